"""Every `geodino ...` command in README.md and docs/*.md parses with the real CLI parser and, when it takes a
config, its config and overrides load and validate (the config files are the repository's)."""

from __future__ import annotations

import os
import shlex

import pytest

from tests.docs.commands import ROOT, documented_commands

COMMANDS = documented_commands()
# configs that a documented command writes: parsed here, loaded when test_doc_runs.py runs the command after them
WRITTEN = {"curated/config.yaml": "data curate --config ... -o curated/"}


def _schema(argv: list[str]):
    """The config schema a command loads (None when it takes no config)."""
    if argv[0] == "pretrain":
        from geodino.train.config import PretrainConfig

        return PretrainConfig
    if argv[0] == "distill":
        from geodino.train.distill.config import DistillConfig

        return DistillConfig
    if argv[0] == "probe":
        from geodino.eval.runner import SuiteConfig

        return SuiteConfig
    if argv[0] == "embed" and argv[1] not in ("pca", "cluster", "similar", "zonal", "classify", "change", "images"):
        from geodino.embed.config import EmbedConfig

        return EmbedConfig
    if argv[:2] == ["data", "preview"]:
        from geodino.config import read_yaml
        from geodino.data.config import DataConfig
        from geodino.train.config import PretrainConfig

        return PretrainConfig if "--config" in argv and "data" in read_yaml(_config(argv)) else DataConfig
    return None


def _config(argv: list[str]) -> str | None:
    for flag in ("--config", "-c"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the repository's configs/ and every YAML a doc defines in a block headed `# NAME.yaml`."""
    from tests.docs.commands import named_yaml_blocks

    root = tmp_path_factory.mktemp("docs")
    (root / "configs").symlink_to(ROOT / "configs")
    for name, text in named_yaml_blocks().items():
        (root / name).write_text(text)
    return root


def test_the_docs_have_commands() -> None:
    files = {f for f, _ in COMMANDS}
    assert len(COMMANDS) > 60 and {"README.md", "embed.md", "pretraining.md", "distillation.md"} <= files


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{f}:{c[8:48]}" for f, c in COMMANDS])
def test_documented_command_parses_and_loads_its_config(doc, command, workdir, monkeypatch) -> None:
    from geodino.cli import build_parser
    from geodino.config import load_config

    # what the shell would expand: a SLURM array task's variables (the README's `--world-size $SLURM_...`)
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    argv = [os.path.expandvars(w) for w in shlex.split(command)[1:]]
    from geodino.train import loggers

    # the tracker examples are documented for users with `geodino[tracking]`; the missing-package path has its own
    # test (tests/train/test_loggers.py)
    monkeypatch.setattr(loggers, "_installed", lambda package: True)
    monkeypatch.chdir(workdir)  # configs/ paths are relative to the repository root, as in the docs
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed why
        pytest.fail(f"{doc}: `{command}` does not parse (exit {exc.code})")
    schema = _schema(argv)
    if schema is not None and _config(argv) not in WRITTEN:
        load_config(schema, getattr(args, "config", None), list(getattr(args, "overrides", []) or []))
