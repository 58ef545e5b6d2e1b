"""Every `--help` as a newcomer reads it: the defaults it prints are the ones the code uses (generated over every
flag of every command), the lines fit 120 columns and break at spaces only, a list option's metavar is shown once,
and the examples in the descriptions give configs that load."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import shlex
from collections.abc import Iterator
from typing import Any

import pytest

from geodino import cli
from geodino.config_none import HEADER, WORDS, none_word

SWITCHES = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


@pytest.fixture(scope="module")
def parsers() -> dict[str, argparse.ArgumentParser]:
    return dict(_parsers(cli.build_parser()))


def _defaults(target: Any) -> dict[str, Any]:
    """Name -> default of a config dataclass's fields or a function's keyword parameters."""
    if dataclasses.is_dataclass(target):
        return {
            f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            for f in dataclasses.fields(target)
        }
    return {n: p.default for n, p in inspect.signature(target).parameters.items() if p.default is not p.empty}


def _same_as() -> dict[str, list[Any]]:
    """Command -> what its flags feed, where a flag's own default must equal it (the CLI passes every flag on, so a
    flag default that drifted from the function's would make the CLI and Python differ without a word)."""
    from geodino.data.curate import CurateConfig
    from geodino.data.preview import write_preview
    from geodino.data.stats import compute_stats
    from geodino.models.checkpoints.convert import convert_checkpoint
    from geodino.viz.attention import attention_maps

    return {
        "data stats": [compute_stats],
        "data curate": [CurateConfig],
        "data preview": [write_preview],
        "convert": [convert_checkpoint],
        "viz attention": [attention_maps],
    }


def _none_means() -> dict[str, list[Any]]:
    """Command -> where the default of a flag left at None comes from (only the flags given are passed on)."""
    from geodino.embed.config import EmbedConfig
    from geodino.embed.images import embed_images
    from geodino.embed.products import cluster_map, pca_map
    from geodino.eval.runner import SuiteConfig

    return {"embed": [EmbedConfig, pca_map, cluster_map, embed_images], "probe": [SuiteConfig]}


# convert --fill: the CLI refuses a band matching none of the input's (its help says so); Python fills with the mean
DIFFERS_ON_PURPOSE = {("convert", "fill")}
_SHOWN = re.compile(r"\bdefault:? (-?[\w.+-]+)")  # `(default 8)`, `(default: cpu)`, `(cluster; default 8)`


def _equal(shown: str, value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        try:
            return float(shown) == float(value)
        except ValueError:
            return False
    return shown == str(value)


def _comparable(shown: str, value: Any) -> bool:
    """Whether `shown` claims a value of `value`'s kind: a number for a number, a word for a text (`(default: auto)`
    of a 0 that means auto, or `(default: the raster's)`, say how a value is chosen and are not compared)."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        return re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", shown) is not None
    return isinstance(value, str) and value != ""  # '' is "not set": the help says what then (the suite's key)


def test_every_default_the_help_prints_is_the_one_the_code_uses(parsers):
    same_as, none_means = _same_as(), _none_means()
    wrong, checked = [], 0
    for name, parser in parsers.items():
        feeds = [_defaults(t) for t in same_as.get(name, [])]
        fallbacks = [_defaults(t) for t in none_means.get(name, [])]
        for action in parser._actions:
            if not action.option_strings or action.dest == "help" or not action.help:
                continue
            flag = f"geodino {name} {action.option_strings[0]}"
            own = None if isinstance(action, SWITCHES) else action.default
            for code in feeds:  # the flag's default is the function's / the dataclass's
                if action.dest in code and own is not None and (name, action.dest) not in DIFFERS_ON_PURPOSE:
                    checked += 1
                    if own != code[action.dest]:
                        wrong.append(f"{flag}: default {own!r}, but the code's is {code[action.dest]!r}")
            text = action.help % {"default": action.default} if "%(" in action.help else action.help
            candidates = [own] if own is not None else [c[action.dest] for c in fallbacks if action.dest in c]
            if isinstance(own, list):  # `(default: 64 16 4; ...)`
                checked += 1
                if " ".join(map(str, own)) not in text:
                    wrong.append(f"{flag}: help does not show its default {own!r}: {text!r}")
                continue
            for shown in _SHOWN.findall(text):
                shown = shown.rstrip(".:")
                compared = [c for c in candidates if _comparable(shown, c)]
                if compared:
                    checked += 1
                    if not any(_equal(shown, c) for c in compared):
                        uses = " or ".join(map(repr, compared))
                        wrong.append(f"{flag}: help says default {shown}, the code uses {uses}")
    assert not wrong, wrong
    assert checked > 40  # the walk reached the commands (embed's, data's, convert's, viz's ... defaults)


@pytest.mark.parametrize("columns", [80, 120])
def test_every_help_fits_the_terminal_and_breaks_at_spaces_only(parsers, monkeypatch, columns):
    """Descriptions ran to 224 columns under the raw formatter the config-keys list needed; `--no-local-cls-norm`
    and `near-duplicates` were cut at a hyphen."""
    monkeypatch.setenv("COLUMNS", str(columns))
    too_wide, cut = [], []
    for name, parser in parsers.items():
        lines = parser.format_help().splitlines()
        for i, line in enumerate(lines):
            if len(line) > 120 and not line.startswith("usage:") and not line.startswith("       geodino"):
                too_wide.append(f"{name or 'geodino'}: {line}")
            if re.search(r"[A-Za-z]-$", line) and i + 1 < len(lines):
                cut.append(f"{name or 'geodino'}: {line}")
    assert not too_wide, too_wide
    assert not cut, cut


def test_a_list_option_whose_metavar_is_the_whole_value_is_shown_once(parsers, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    viz, embed = parsers["viz attention"].format_help(), parsers["embed"].format_help()
    assert "[--window COL ROW W H]" in viz and "--window COL ROW W H  read only" in viz
    assert "COL ROW W H [" not in viz and "X,Y [X,Y" not in viz
    assert "--bbox MINX MINY MAXX MAXY\n" in embed and "MAXY [MINX" not in embed
    assert "[--image-size H [W]]" in parsers["info"].format_help()
    assert "--clusters CLUSTERS [CLUSTERS ...]" in parsers["data curate"].format_help()  # a plain list stays


def test_descriptions_wrap_and_the_config_keys_stay_one_per_line(parsers, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = parsers["probe"].format_help()
    head = text.split("positional arguments:")[0]
    assert "Run the probe tasks" in head and max(map(len, head.splitlines())) <= 100
    keys = text.split(f"{HEADER}\n", 1)[1].splitlines()
    assert keys[:2] == ["  name='probe'", "  backbone=''"]
    distill = parsers["distill"].format_help()
    assert "  students=[1 entry: vits]\n  students[i].name='vits'\n" in distill


def test_config_help_lists_the_shipped_configs_it_takes_by_name(parsers):
    from geodino.config import find_config, shipped_configs
    from geodino.train.config import PretrainConfig

    helps = {a.dest: a.help for a in parsers["pretrain"]._actions}
    names = shipped_configs(PretrainConfig)
    assert "demo" in names and all(n in helps["config"] for n in names)
    assert find_config("small_vit_tiny", PretrainConfig).is_file()  # what the help promises
    preview = {a.dest: a.help for a in parsers["data preview"]._actions}
    assert "shipped one by name, e.g. demo" in preview["config"]  # a pretraining config's name (no data configs)
    assert find_config("demo", PretrainConfig).is_file()


def _example(parser: argparse.ArgumentParser) -> list[str]:
    """The example command of a description (its indented lines, `\\` continuations joined) as argv."""
    lines = parser.description.split("example", 1)[1].splitlines()[1:]
    return shlex.split(" ".join(line.strip().rstrip("\\") for line in lines if line.startswith(" ")))


@pytest.mark.parametrize("command", ["pretrain", "distill"])
def test_the_description_example_parses_and_loads_its_config(parsers, command, tmp_path):
    """pretrain's example named configs/pretrain/demo.yaml alone, whose data is the folder only `geodino demo`
    writes: it failed as written. Each example is read as the command reads it, with DIR a real folder."""
    from geodino.config import load_config
    from geodino.train.commands import _overrides

    argv = [w.replace("[DIR]", f"[{tmp_path}]") for w in _example(parsers[command])]
    assert argv[:2] == ["geodino", command]
    args, extra = cli.build_parser(command).parse_known_args(argv[1:])
    args.overrides = [*args.overrides, *extra]  # key=value after an option, as `cli.main` reads them
    if command == "pretrain":
        from geodino.train.config import PretrainConfig as Schema
    else:
        from geodino.train.distill.config import DistillConfig as Schema
    cfg = load_config(Schema, args.config, _overrides(args))
    assert [str(p).rstrip("/") for p in cfg.data.sources[0].paths] == [str(tmp_path)]
    if command == "pretrain":
        assert cfg.trainer.max_steps == 20 and cfg.output_dir == "runs/smoke"
    else:
        assert cfg.teacher.spec == "runs/smoke/export/teacher.pth"  # the pretrain example's export


def test_data_stats_takes_no_progress_as_embed_and_curate_do(monkeypatch, tmp_path):
    """The one concept has one flag: data stats draws a progress bar too, and had no --no-progress to quiet it."""
    import geodino.data.stats as stats

    seen: dict[str, Any] = {}

    def write_stats(paths, out, plot=None, **kwargs):
        seen.update(kwargs)
        return out

    monkeypatch.setattr(stats, "write_stats", write_stats)
    out = tmp_path / "s.yaml"
    out.write_text("name: s\n")  # what the command prints back
    for argv, progress in (([], True), (["--no-progress"], False)):
        assert cli.main(["data", "stats", "a.tif", "--out", str(out), "--overwrite", *argv]) == 0
        assert seen["progress"] is progress


def _choices(parsers: dict[str, argparse.ArgumentParser], command: str, flag: str) -> tuple[str, ...]:
    return tuple(next(a.choices for a in parsers[command]._actions if flag in a.option_strings))


def test_every_choice_list_is_the_one_the_code_checks(parsers):
    """The `{a,b,c}` a --help lists is what the code accepts: a choice list written in the parser beside a constant
    in the code could drift (a new cloud rule, blend or layout the CLI would refuse or the code would not know)."""
    from geodino.data.config import SOURCE_TYPES
    from geodino.data.curate.clouds import CLOUD_RULES
    from geodino.data.curate.tiles import CURATABLE
    from geodino.embed import images, scene_skips
    from geodino.embed.blend import BLEND_MODES
    from geodino.embed.classify_options import METHODS
    from geodino.embed.encoding import DTYPES
    from geodino.models.checkpoints.convert import LAYOUTS

    assert _choices(parsers, "data curate", "--cloud-rule") == CLOUD_RULES
    assert sorted(_choices(parsers, "data curate", "--type")) == sorted(CURATABLE)
    assert set(_choices(parsers, "data stats", "--type")) <= set(SOURCE_TYPES)
    assert _choices(parsers, "convert", "--to") == LAYOUTS
    assert _choices(parsers, "convert", "--from") == ("auto", *LAYOUTS)
    assert _choices(parsers, "embed", "--blend") == BLEND_MODES
    assert _choices(parsers, "embed", "--dtype") == DTYPES
    assert _choices(parsers, "embed", "--method") == METHODS
    assert _choices(parsers, "embed", "--pool") == images.POOLS
    assert set(_choices(parsers, "embed", "--on-error")) == set(images.ON_ERROR) == set(scene_skips.ON_ERROR)
    for command in ("data stats", "data index", "data curate"):
        assert set(_choices(parsers, command, "--on-error")) == {"skip", "stop"}, command


def _fields(node: Any, prefix: str = "") -> Iterator[tuple[str, type, Any]]:
    """(dotted key as the config-keys list spells it, its dataclass, its default) of every leaf of a schema's
    default instance `node`: nested sections by their values, a list of entries (data.sources) by a default entry of
    the class its type names."""
    import typing

    cls = type(node)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            yield from _fields(value, f"{prefix}{f.name}.")
            continue
        yield f"{prefix}{f.name}", cls, value
        inner = [a for arg in typing.get_args(hints[f.name]) for a in (typing.get_args(arg) or (arg,))]
        for entry in (a for a in inner if isinstance(a, type) and dataclasses.is_dataclass(a)):
            yield from _fields(entry(), f"{prefix}{f.name}[i].")


def test_every_word_in_a_config_keys_list_stands_for_a_none_default(parsers):
    """`--help` listed 46 keys as `key=None` (roi, margin, fused ...): Python's word for "not given", not what the
    key does then. Each shows the word for it now (`config_none`); a word must stand for a None default of the code
    (a default that changed leaves no stale word), and every None default has its word."""
    lists = {name: p for name, p in parsers.items() if p.epilog and p.epilog.startswith(HEADER)}
    assert set(lists) == {"pretrain", "distill", "probe", "embed", "data preview"}, sorted(lists)
    wrong, words = [], 0
    for name, parser in lists.items():
        shown = dict(line.strip().split("=", 1) for line in parser.epilog.splitlines()[1:])
        for key, cls, default in _fields(_schema(name)()):
            field = key.rsplit(".", 1)[-1].split("[", 1)[0]
            if key not in shown:
                wrong.append(f"{name}: {key} is not listed")
            elif default is None:
                words += 1
                if shown[key] != none_word(cls, field) or shown[key] == "None":
                    wrong.append(f"{name}: {key}={shown[key]}; give its None default a word in config_none.WORDS")
            elif _literal(shown[key]) != default and not shown[key].startswith("["):  # entries: `[1 entry: vits]`
                wrong.append(f"{name}: {key}={shown[key]}, but the code's default is {default!r}")
    assert not wrong, wrong
    assert words >= 46
    # WORDS names a class by its name alone: two config classes of one name would share their words
    classes: dict[str, set[type]] = {}
    for name in lists:
        for _, cls, _ in _fields(_schema(name)()):
            classes.setdefault(cls.__qualname__, set()).add(cls)
    assert all(len(c) == 1 for c in classes.values()), {k: c for k, c in classes.items() if len(c) > 1}
    for owner, names in WORDS.items():  # every word names a field of a listed class whose default is None
        assert owner in classes, f"WORDS names {owner}, which no config-keys list shows"
        defaults = {f.name: f.default for f in dataclasses.fields(classes[owner].pop())}
        for field in names:
            assert defaults.get(field, "missing") is None, f"{owner}.{field}: default {defaults.get(field, 'missing')}"


def _literal(text: str) -> Any:
    """The value a config-keys line shows (`256.0` of a float key equals its code default 256)."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _schema(command: str) -> type:
    from geodino.data.config import DataConfig
    from geodino.embed.config import EmbedConfig
    from geodino.eval.runner import SuiteConfig
    from geodino.train.config import PretrainConfig
    from geodino.train.distill.config import DistillConfig

    schemas = {"pretrain": PretrainConfig, "distill": DistillConfig, "probe": SuiteConfig, "embed": EmbedConfig}
    return {**schemas, "data preview": DataConfig}[command]
