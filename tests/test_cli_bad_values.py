"""Values a user plausibly mistypes, each refused with one line naming the flag (exit 2) before any work: an empty
option value (`--out ''` made probe, viz attention and data curate write into the current folder; `--sensor ''`
and `--bands ''` were taken as not given), `timm:` with no name (a traceback from timm), `--seed -1` of the data
commands (a traceback from numpy or k-means after the work) and a file as `demo --out` (a traceback)."""

from __future__ import annotations

import pytest

from geodino import cli


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["probe", "-b", "arch:vit_tiny", "--out", ""], "--out/-o"),
        (["viz", "attention", "x.tif", "-b", "arch:vit_tiny", "--out", ""], "--out/-o"),
        (["data", "curate", "x.tif", "-b", "arch:vit_tiny", "--size", "4", "--out", ""], "--out/-o"),
        (["embed", "x.tif", "-b", "arch:vit_tiny", "--out", "o.tif", "--sensor", ""], "--sensor"),
        (["embed", "x.tif", "-b", "arch:vit_tiny", "--out", "o.tif", "--bands", " "], "--bands"),
        (["data", "stats", "x.tif", "--out=", "--name", "n"], "--out/-o"),
    ],
)
def test_an_empty_option_value_is_refused_naming_the_flag(argv, flag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"argument {flag}: empty value" in err[0], err
    assert list(tmp_path.iterdir()) == []  # nothing written into the current folder


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    return int(exc.value.code)


def test_timm_spec_without_a_name_is_one_line(capsys):
    assert cli.main(["info", "timm:"]) == 2
    err = capsys.readouterr().err
    assert "unknown timm model '' in backbone spec timm:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "stats", "x.tif", "--out", "s.yaml", "--seed", "-1"],
        ["data", "preview", "--seed", "-1"],
        ["data", "curate", "x.tif", "-b", "arch:vit_tiny", "--size", "4", "--out", "c", "--seed", "-1"],
    ],
)
def test_data_commands_refuse_a_negative_seed(argv, capsys):
    assert _exit_code(argv) == 2
    assert "argument --seed: -1 is out of range: give a whole number >= 0" in capsys.readouterr().err


def test_negative_seed_refused_from_python_too(tmp_path):
    from geodino.data.curate.config import CurateConfig
    from geodino.data.stats import compute_stats
    from geodino.errors import GeoDinoError

    with pytest.raises(GeoDinoError, match=r"seed=-1 \(--seed\) must be a whole number >= 0"):
        compute_stats(str(tmp_path / "x.tif"), seed=-1)  # refused before the (missing) file is looked at
    with pytest.raises(GeoDinoError, match=r"--offset nan \(offset= in Python\) must be a finite number"):
        compute_stats(str(tmp_path / "x.tif"), offset=float("nan"))  # was "no valid pixel", naming no flag
    cfg = CurateConfig(paths=["x.tif"], backbone="arch:vit_tiny", size=4, seed=-1)
    with pytest.raises(GeoDinoError, match=r"--seed -1: give a whole number >= 0"):
        cfg.validate()


def test_demo_refuses_a_file_as_its_output_folder(tmp_path, capsys):
    f = tmp_path / "taken.txt"
    f.write_text("x")
    assert cli.main(["demo", "--size", "tiny", "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert "cannot create demo output folder" in err and "is a file, not a folder" in err and "Traceback" not in err


def test_embed_threads_above_the_cpu_count_is_refused(monkeypatch):
    """`--threads 100000` stopped in torch's allocator with a traceback; more threads than CPUs only oversubscribe."""
    from geodino.embed.config import EmbedConfig
    from geodino.errors import ConfigError

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    with pytest.raises(ConfigError, match=r"--threads 100000 \(threads= in Python\) is more than the 4 CPUs here"):
        EmbedConfig(threads=100000).validate()
    EmbedConfig(threads=4).validate()


def test_embed_workers_above_the_cpu_count_is_refused(monkeypatch):
    """`--workers 100000` spawned processes one by one (each loading the backbone) until an IndexError traceback."""
    from geodino.embed.config import EmbedConfig
    from geodino.errors import ConfigError

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    with pytest.raises(ConfigError, match=r"--workers 5 \(workers= in Python\) is more than the 4 CPUs here"):
        EmbedConfig(workers=5).validate()
    EmbedConfig(workers=4).validate()


def test_embed_images_threads_above_the_cpu_count_is_one_line(monkeypatch, tmp_path, capsys):
    """`embed images --threads 100000` ended in a MemoryError traceback from torch.set_num_threads."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    (tmp_path / "imgs").mkdir()
    argv = ["embed", "images", str(tmp_path / "imgs"), "-b", "arch:vit_tiny", "--out", str(tmp_path / "f.parquet")]
    assert cli.main([*argv, "--threads", "100000"]) == 2
    err = capsys.readouterr().err
    assert "--threads 100000 (threads= in Python) is more than the 4 CPUs here" in err and "Traceback" not in err


def test_curate_workers_above_the_cpu_count_is_refused(monkeypatch):
    """`data curate --workers 100000`: the DataLoader started reader processes one by one, for minutes."""
    from geodino.data.curate.config import CurateConfig
    from geodino.errors import ConfigError

    monkeypatch.setattr(
        "os.sched_getaffinity", lambda pid: set(range(4)), raising=False
    )  # readers wait on disks: 8 per CPU
    with pytest.raises(ConfigError, match=r"--workers 33 \(workers= in Python\) is more than 32 reader processes"):
        CurateConfig(paths=["x.tif"], backbone="arch:vit_tiny", size=4, workers=33).validate()
    CurateConfig(paths=["x.tif"], backbone="arch:vit_tiny", size=4, workers=32).validate()


def test_an_empty_string_default_is_not_refused(capsys):
    """argparse runs a string default through the same hook; an option whose default is '' must still parse."""
    parser = cli.Parser(prog="t")
    parser.add_argument("--name", default="")
    assert parser.parse_args([]).name == ""
    with pytest.raises(SystemExit) as exc:  # a given empty value is still refused
        parser.parse_args(["--name", " "])
    assert exc.value.code == 2 and "argument --name: empty value ' '; give a value" in capsys.readouterr().err


def test_the_cpu_count_is_the_affinity_not_the_machines(monkeypatch):
    """A SLURM step or a container pins fewer CPUs than the machine has: the checks count those."""
    import os

    from geodino.cpus import most_readers, usable_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert usable_cpus() == 2 and most_readers() == 16
