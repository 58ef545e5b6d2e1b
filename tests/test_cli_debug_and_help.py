"""The command line as a whole: `--debug` anywhere and GEODINO_DEBUG, the closest choice named for a misspelt one,
counts refused in one line before any work, and every option of the shell's commands documented with its default."""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from geodino import cli
from geodino.errors import InputError


def _err_lines(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def _one_line_exit_2(capsys, argv: list[str]) -> str:
    """argparse errors leave through SystemExit(2), geodino's own through the return value: either way one line."""
    capsys.readouterr()
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    lines = _err_lines(capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


def test_debug_after_the_sub_command_shows_the_traceback(tmp_path, capsys):
    """`geodino data stats ... --debug` was refused as an unrecognized argument of `data stats`."""
    argv = ["data", "stats", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "s.yaml")]
    with pytest.raises(InputError, match=r"missing\.tif does not exist"):
        cli.main([*argv, "--debug"])
    with pytest.raises(InputError, match=r"missing\.tif does not exist"):
        cli.main(["--debug", *argv])  # the documented place still works
    assert "missing.tif does not exist" in _one_line_exit_2(capsys, argv)


@pytest.mark.parametrize(("value", "traceback"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_geodino_debug_in_the_environment(tmp_path, capsys, monkeypatch, value, traceback):
    monkeypatch.setenv(cli.DEBUG_ENV, value)
    argv = ["data", "stats", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "s.yaml")]
    if traceback:
        with pytest.raises(InputError, match=r"missing\.tif does not exist"):  # raised, not one line
            cli.main(argv)
    else:
        assert "missing.tif" in _one_line_exit_2(capsys, argv)


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["emebd", "x.tif"], "did you mean embed?"),
        (["data", "statz", "x.tif"], "did you mean stats?"),
        (["convert", "a.pth", "b", "--to", "hff"], "did you mean hf?"),
        (["embed", "x.tif", "--dtype", "flaot16"], "did you mean float16?"),
    ],
)
def test_a_misspelt_choice_names_the_closest(capsys, argv, hint):
    line = _one_line_exit_2(capsys, argv)
    assert hint in line and "invalid choice" in line


def test_a_choice_with_nothing_close_gets_no_guess(capsys):
    assert "did you mean" not in _one_line_exit_2(capsys, ["zzzzzz"])


def _tif(path, bands: int = 3, size: int = 64):
    import rasterio
    from rasterio.transform import from_origin

    data = np.random.default_rng(0).integers(1, 255, (bands, size, size)).astype(np.uint8)
    profile = dict(driver="GTiff", width=size, height=size, count=bands, dtype="uint8", crs="EPSG:32633")
    with rasterio.open(path, "w", transform=from_origin(500000, 5000000, 10, 10), **profile) as dst:
        dst.write(data)
    return path


@pytest.mark.parametrize("samples", ["0", "-2", "two"])
def test_data_preview_refuses_a_bad_sample_count_in_one_line(tmp_path, capsys, samples):
    """`--samples 0` / `-2` reached matplotlib (a ValueError traceback, exit 1) after the tiles were read."""
    src = _tif(tmp_path / "s.tif")
    source = f"sources=[{{type: raster, paths: [{src}], tile_size: 32}}]"
    out = tmp_path / "p.png"
    line = _one_line_exit_2(capsys, ["data", "preview", "--samples", samples, source, "--out", str(out)])
    assert "--samples" in line and samples in line
    assert not out.exists()


@pytest.mark.parametrize("bands", ["0", "-3"])
def test_convert_refuses_a_bad_expect_bands_in_one_line(tmp_path, capsys, bands):
    """`--expect-bands -3` built a tensor of negative size (a RuntimeError traceback); 0 a 0-band model."""
    import torch

    from geodino.backbones.load import load_backbone

    ckpt = tmp_path / "tiny.pth"
    torch.save(load_backbone("arch:vit_tiny?depth=1&patch_size=8").model.state_dict(), ckpt)
    out = tmp_path / "out.pth"
    line = _one_line_exit_2(capsys, ["convert", str(ckpt), str(out), "--expect-bands", bands])
    assert "--expect-bands" in line and bands in line
    assert not out.exists()


def test_whole_number_type():
    parse = cli.whole_number(0)
    assert parse("0") == 0 and parse("12") == 12
    for bad, said in (("-1", "-1 is out of range: give a whole number >= 0"), ("1.5", "'1.5' is not a whole number")):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(said)):
            parse(bad)
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape("'x' is not a whole number (>= 0)")):
        parse("x")


OWNED_ELSEWHERE = {"embed", "probe", "demo"}  # their flags are registered by their own parts


def _parsers(parser, path=(), line="geodino"):
    yield path, parser, line
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not path and name in OWNED_ELSEWHERE:
                    continue
                yield from _parsers(sub, (*path, name), lines.get(name))


def test_every_command_and_option_says_what_it_does_and_its_default():
    """Options without help (data stats --type/--seed, convert --from/--to, viz attention --device ...) and
    sub-commands without a description (data, data sensors, data stack) were listed bare by --help."""
    missing = []
    for path, parser, line in _parsers(cli.build_parser()):
        name = " ".join(path) or "geodino"
        if not line or not parser.description:
            missing.append(f"{name}: no one-line help or no description")
        for action in parser._actions:
            if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            flag = action.option_strings[0]
            if not action.help:
                missing.append(f"{name} {flag}: no help")
                continue
            switch = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
            if action.default not in (None, False, []) and not switch and "default" not in action.help.lower():
                missing.append(f"{name} {flag}: default {action.default!r} not shown")
    assert not missing, missing


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "stats", "x.tif", "--out", "s.yaml", "--bands", "{}"],
        ["data", "stats", "x.tif", "--out", "s.yaml", "--band-names", "{}"],
        ["data", "stack", "root", "--out", "o", "--bands", "{}"],
        ["data", "curate", "d", "-b", "arch:vit_small", "--out", "o", "--size", "3", "--bands", "{}"],
        ["convert", "a.pth", "b.pth", "--bands", "{}"],
        ["convert", "a.pth", "b.pth", "--src-bands", "{}"],
        ["viz", "attention", "x.tif", "-b", "arch:vit_small", "--out", "o", "--bands", "{}"],
    ],
)
def test_band_name_flags_take_the_comma_form_too(argv):
    """`--bands B04,B03,B02` (the form of embed's --bands 4,3,2 and of a spec's ?bands=) was one band named
    "B04,B03,B02"; the space form and a mix of both give the same list."""
    parser = cli.build_parser(argv[0])
    flag = argv[argv.index("{}") - 1]
    for form in (["B04,B03,B02"], ["B04", "B03", "B02"], ["B04,B03", "B02"], ["B04, B03,", "B02"]):
        i = argv.index("{}")
        args = parser.parse_args([*argv[:i], *form, *argv[i + 1 :]])
        got = getattr(args, flag.lstrip("-").replace("-", "_"))
        assert got == ["B04", "B03", "B02"], (form, got)


def test_data_stats_reads_comma_separated_bands(tmp_path, capsys):
    import yaml

    src = _tif(tmp_path / "s.tif")
    out = tmp_path / "s.yaml"
    assert cli.main(["data", "stats", str(src), "--out", str(out), "--bands", "b3,b1"]) == 0
    # the file is an RGB GeoTIFF (GDAL's default colour interpretation): positions b3, b1 are its blue and red bands,
    # and the YAML names them so (a source naming them by colour then matches it)
    assert yaml.safe_load(out.read_text())["bands"] == ["blue", "red"]
    assert "--bands" in _one_line_exit_2(capsys, ["data", "stats", str(src), "--out", str(out), "--bands", ","])


@pytest.mark.parametrize(
    ("raised", "code", "last"),
    [
        (KeyboardInterrupt, 130, "geodino: interrupted"),
        (InputError("bad tile"), 2, "geodino: error: bad tile"),
    ],
)
def test_the_last_line_starts_a_line_of_its_own_after_an_open_progress_bar(monkeypatch, capsys, raised, code, last):
    """A Ctrl-C (or an error) while a progress bar was open printed `...0/256 [00:00<?, ?tile/s]geodino: interrupted`
    on one line; the bar was finished under the message when the interpreter collected it."""
    import sys

    from tqdm import tqdm

    import geodino.data.commands as data_commands

    def stopped_mid_bar(args):
        bar = tqdm(total=256, desc="embedding tiles", file=sys.stderr)
        bar.update(3)
        stopped_mid_bar.bar = bar  # held, as a traceback's frames hold it
        raise raised

    monkeypatch.setattr(data_commands, "_sensors", stopped_mid_bar)
    assert cli.main(["data", "sensors"]) == code
    err = capsys.readouterr().err
    assert err.endswith(last + "\n"), repr(err[-200:])
    assert err.split("\n")[-2] == last, repr(err[-200:])  # the whole line, no bar before it


@pytest.mark.parametrize(
    ("command", "module", "func"), [("pretrain", "pretrain", "pretrain"), ("distill", "distill", "distill")]
)
def test_pretrain_and_distill_take_out_as_the_run_folder(tmp_path, capsys, monkeypatch, command, module, func):
    """Every other command names its output --out; `geodino pretrain ... --out runs/x` was an unknown argument."""
    import importlib

    seen = {}

    def fake(cfg):
        seen["output_dir"] = cfg.output_dir
        return {} if command == "distill" else tmp_path

    monkeypatch.setattr(importlib.import_module(f"geodino.train.{module}"), func, fake)
    config = ["--config", "demo" if command == "pretrain" else "small_vit_tiny_half"]  # shipped configs
    run = tmp_path / "runs: a 'b'"  # any path is text, not YAML
    assert cli.main([command, *config, "--out", str(run)]) == 0
    assert seen["output_dir"] == str(run)
    key = "trainer.max_steps=7" if command == "pretrain" else "train.max_steps=7"  # an override beside it
    assert cli.main([command, *config, "-o", "r1", key]) == 0 and seen["output_dir"] == "r1"
    line = _one_line_exit_2(capsys, [command, *config, "--out", "r1", "output_dir=r2"])
    assert "--out r1 and output_dir=r2" in line


def test_a_warning_while_a_progress_bar_is_open_gets_a_line_of_its_own() -> None:
    """A warning printed while a bar's line is open landed on it: `embed images:   0%|...| 0/7 [00:00<?,
    ?img/s]geodino: warning: skipped unreadable image ...`. The CLI's one-line form starts a new line then; it stays
    a format (pytest.warns and other recorders still see the warning)."""
    import io
    import warnings

    from tqdm import tqdm

    from geodino import cli

    out = io.StringIO()
    bar = tqdm(total=7, file=out, desc="embed images", mininterval=0)
    bar.update(1)
    for name in ("x.png", "y.png"):  # two before the bar's next update: no blank line between them
        out.write(cli._one_line_warning(UserWarning(f"skipped unreadable image {name}"), UserWarning, "f.py", 1))
    bar.update(1)
    bar.close()
    shown = [line.rsplit("\r", 1)[-1].rstrip() for line in out.getvalue().split("\n")]  # what a terminal keeps
    assert shown[:2] == [f"geodino: warning: skipped unreadable image {n}" for n in ("x.png", "y.png")], shown
    assert shown[2].startswith("embed images:  29%"), shown  # before: "...img/s]geodino: warning", a blank line
    assert cli._one_line_warning(UserWarning("w"), UserWarning, "f.py", 1) == "geodino: warning: w\n"  # no bar
    before = warnings.formatwarning
    try:
        with warnings.catch_warnings(record=True) as seen:  # the CLI's format leaves recording alone
            warnings.simplefilter("always")
            warnings.formatwarning = cli._one_line_warning
            warnings.warn("recorded", UserWarning, stacklevel=1)
    finally:
        warnings.formatwarning = before
    assert [str(w.message) for w in seen] == ["recorded"]
