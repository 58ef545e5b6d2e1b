"""One concept, one set of spellings across the commands: negative numbers in scientific notation as values
(`--scale -1e-4` was "expected one argument"), `--tile`/`--tile-size` and `--sample`/`--samples` in every command
that takes one of them, embed's `--bands 4 3 2` as other commands take names, `--device` for probe, `--out` for
export and convert, `--block` for viz attention's `--layer`."""

from __future__ import annotations

import argparse
import re

import pytest

from geodino import cli


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = cli.build_parser(argv[0])
    args, extra = parser.parse_known_args(argv)
    assert extra == []
    return args


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["data", "stats", "x.tif", "--out", "s.yaml", "--scale", "-1e-4"], "scale", -1e-4),
        (["data", "stats", "x.tif", "--out", "s.yaml", "--offset", "-1E-1"], "offset", -0.1),
        (["data", "stats", "x.tif", "--out", "s.yaml", "--nodata", "-3.4e+38"], "nodata", -3.4e38),
        (["embed", "x.tif", "--out", "o.tif", "--nodata", "-3.4e38"], "nodata", -3.4e38),
        (["embed", "x.tif", "--out", "o.tif", "--scale", "-1e-4"], "scale", -1e-4),
        (["embed", "images", "d", "--out", "o.parquet", "--offset", "-1e-1"], "offset", -0.1),
        (["embed", "x.tif", "--out", "o.tif", "--nodata", "-inf"], "nodata", float("-inf")),
        (["viz", "attention", "x.tif", "-b", "s", "-o", "o", "--mass", "-5e-1"], "mass", -0.5),
        (["embed", "x.tif", "--out", "o.tif", "--nodata", "-9999"], "nodata", -9999.0),  # worked before, still does
    ],
)
def test_negative_numbers_in_scientific_notation_are_values(argv, dest, value):
    assert getattr(_parse(argv), dest) == value


def test_negative_scale_reaches_the_range_check_not_an_argparse_error(tmp_path, capsys):
    """`data stats --scale -1e-4`: the line now says what is wrong with the value (was 'expected one argument')."""
    code = cli.main(
        ["data", "stats", str(tmp_path / "none.tif"), "--out", str(tmp_path / "s.yaml"), "--scale", "-1e-4"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "expected one argument" not in err
    assert "--scale -0.0001 (scale= in Python) must be a positive" in err


def test_an_option_that_looks_like_a_word_is_still_an_option(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["data", "stats", "x.tif", "--out", "s.yaml", "--scale", "-e4"])
    assert exc.value.code == 2 and "--scale: expected one argument" in capsys.readouterr().err


def test_embed_layers_takes_negative_blocks_without_the_equals_sign():
    assert _parse(["embed", "x.tif", "--out", "o.tif", "--layers", "-2,-1"]).layers == "-2,-1"


@pytest.mark.parametrize(
    ("argv", "bands", "rest"),
    [
        (["embed", "x.tif", "--bands", "4", "3", "2", "--out", "o.tif"], [4, 3, 2], []),
        (["embed", "x.tif", "--bands", "4,", "3,", "2"], [4, 3, 2], []),
        (["embed", "x.tif", "--bands", "4,3,2", "tile=256"], [4, 3, 2], ["tile=256"]),
        (["embed", "--bands", "4", "3", "x.tif", "-o", "o.tif"], [4, 3], []),
    ],
)
def test_embed_bands_space_separated_is_one_list(argv, bands, rest):
    """`--bands 4 3 2`, as `--bands B04 B03 B02` elsewhere: 3 and 2 were taken for more input scenes."""
    args = _parse(argv)
    assert args.bands == bands and args.input == "x.tif" and args.overrides == rest


def test_embed_bands_leaves_an_existing_file_named_as_a_number_an_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "2").write_bytes(b"")
    args = _parse(["embed", "x.tif", "--bands", "4", "2", "--out", "o"])
    assert args.bands == [4] and args.overrides == ["2"]


def test_embed_bands_takes_names_too(capsys):
    """Band names were an argparse error; they are now matched to the input's bands (tests/embed/
    test_embed_band_names.py), so a missing input is what this run stops at, in one line."""
    assert _parse(["embed", "x.tif", "--bands", "B04", "B03", "--out", "o"]).bands == ["B04", "B03"]
    code = cli.main(["embed", "x.tif", "-b", "arch:vit_test", "--out", "o.tif", "--bands", "B04,B03"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "input x.tif does not exist" in err


ALIASES = [
    (["embed", "x.tif", "--out", "o.tif"], "--tile", "--tile-size", "tile", "64"),
    (["embed", "pca", "f.tif", "--out", "o.tif"], "--sample", "--samples", "sample", "500"),
    (["data", "stats", "x.tif", "--out", "s.yaml"], "--tile-size", "--tile", "tile_size", "64"),
    (["data", "stats", "x.tif", "--out", "s.yaml"], "--samples", "--sample", "samples", "16"),
    (["data", "preview"], "--samples", "--sample", "samples", "2"),
    (["data", "curate", "d", "-b", "s", "-o", "o", "--size", "4"], "--tile-size", "--tile", "tile_size", "64"),
    (["viz", "attention", "x.tif", "-b", "s", "-o", "o"], "--layer", "--block", "layer", "-2"),
]


@pytest.mark.parametrize(("argv", "flag", "alias", "dest", "value"), ALIASES)
def test_both_spellings_set_the_same_option_and_both_are_in_help(argv, flag, alias, dest, value, capsys):
    a, b = _parse([*argv, flag, value]), _parse([*argv, alias, value])
    assert getattr(a, dest) == getattr(b, dest) == int(value)
    help_argv = argv[:2] if argv[0] in ("data", "viz") else argv[:1]
    with pytest.raises(SystemExit):
        cli.main([*help_argv, "--help"])
    text = capsys.readouterr().out
    # one help entry for both: "--tile TILE, --tile-size TILE"
    assert re.search(rf"{flag}( [A-Z_]+)?, {alias}( |$)", text, re.MULTILINE), text


def test_embed_refuses_an_alias_of_another_form_by_its_flag(tmp_path, capsys):
    """The per-form flag rule still holds for the new spelling (`embed pca F --tile-size 64`: not pca's)."""
    code = cli.main(["embed", "pca", str(tmp_path / "f.tif"), "--out", str(tmp_path / "p.tif"), "--tile-size", "64"])
    assert code == 2 and "--tile applies to geodino embed itself" in capsys.readouterr().err


def test_probe_device_sets_the_suite_device(monkeypatch):
    from geodino.eval import commands

    seen = {}

    def record(args, cfg):
        seen["device"] = cfg.device
        return 0

    monkeypatch.setattr(commands, "_probe_locked", record)
    monkeypatch.setattr("geodino.eval.runner.locked_probe_output", lambda out: _null())
    tasks = "tasks={t: {type: classification}}"
    assert cli.main(["probe", "--device", "cuda:1", tasks]) == 0
    assert seen["device"] == "cuda:1"
    seen.clear()
    assert cli.main(["probe", tasks]) == 0 and seen["device"] == "cpu"  # the key's default without the flag


def test_probe_device_and_a_device_override_both_is_one_line(capsys):
    assert cli.main(["probe", "--device", "cuda", "device=cpu", "tasks={t: {type: classification}}"]) == 2
    err = capsys.readouterr().err
    assert "--device cuda and device=cpu both set device" in err and len(err.strip().splitlines()) == 1


def test_probe_no_progress_sets_the_suite_progress_key():
    from geodino.config import load_config
    from geodino.errors import ConfigError
    from geodino.eval.commands import _overrides
    from geodino.eval.runner import SuiteConfig

    tasks = "tasks={t: {type: classification}}"
    args = _parse(["probe", "--no-progress", tasks])
    assert load_config(SuiteConfig, None, _overrides(args)).progress is False
    assert load_config(SuiteConfig, None, _overrides(_parse(["probe", tasks]))).progress is True
    with pytest.raises(ConfigError, match="--no-progress and progress=true both set progress; give one"):
        _overrides(_parse(["probe", "--no-progress", "progress=true", tasks]))


def _null():
    import contextlib

    return contextlib.nullcontext()


def test_convert_takes_its_output_as_out_too(monkeypatch, tmp_path, capsys):
    from geodino.models.checkpoints import convert

    calls = []
    monkeypatch.setattr(convert, "convert_checkpoint", lambda src, dst, **kw: calls.append((src, dst)) or dst)
    assert cli.main(["convert", "in.pth", "--out", "o.pth"]) == 0
    assert cli.main(["convert", "in.pth", "o2.pth"]) == 0  # the documented positional form
    assert calls == [("in.pth", "o.pth"), ("in.pth", "o2.pth")]
    capsys.readouterr()
    assert cli.main(["convert", "in.pth", "a.pth", "-o", "b.pth"]) == 2
    assert "a.pth and --out b.pth both name the output" in capsys.readouterr().err
    assert cli.main(["convert", "in.pth"]) == 2
    assert "no output given: geodino convert INPUT OUTPUT (or --out OUTPUT)" in capsys.readouterr().err


def test_export_takes_its_output_as_out_too(monkeypatch, tmp_path, capsys):
    from geodino.train import checkpointing

    calls = []

    def fake_export(ckpt, out, which="teacher", overwrite=False):
        calls.append((ckpt, str(out)))
        return [tmp_path / "o.pth"]

    monkeypatch.setattr(checkpointing, "export", fake_export)
    out = str(tmp_path / "o.pth")
    assert cli.main(["export", "last.ckpt", "-o", out]) == 0
    assert calls == [("last.ckpt", out)]
    assert cli.main(["export", "last.ckpt"]) == 2
    assert "no output given" in capsys.readouterr().err


def test_every_sub_command_parser_is_geodinos():
    """Every sub-command parser is a `cli.Parser` (so each gets the negative-number rule)."""
    parser = cli.build_parser()

    def walk(p):
        assert isinstance(p, cli.Parser), p.prog
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    walk(sp)

    walk(parser)


def test_embed_images_scale_0_is_refused_as_embed_refuses_it(tmp_path, monkeypatch, capsys):
    """`embed images DIR --scale 0` ran with the default rule (0 is the Python API's "unset") while `embed IN
    --scale 0` is refused; now both say to leave --scale out, before any image is read."""
    from geodino.embed import images

    monkeypatch.setattr(images, "embed_images", lambda *a, **k: pytest.fail("embed_images was called"))
    (tmp_path / "imgs").mkdir()
    argv = ["embed", "images", str(tmp_path / "imgs"), "-b", "arch:vit_tiny", "--out", str(tmp_path / "f.parquet")]
    assert cli.main([*argv, "--scale", "0"]) == 2
    err = capsys.readouterr().err
    assert "--scale 0 must be a positive DN -> reflectance factor" in err
    assert "leave --scale out" in err


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["viz", "attention", "x.tif", "-b", "s", "-o", "o", "--window", "0,8,32,16"], "window", [0, 8, 32, 16]),
        (
            ["viz", "attention", "x.tif", "-b", "s", "-o", "o", "--window", "0", "8", "32", "16"],
            "window",
            [0, 8, 32, 16],
        ),
        (["viz", "attention", "x.tif", "-b", "s", "-o", "o", "--heads", "0,2"], "heads", [0, 2]),
        (["viz", "attention", "x.tif", "-b", "s", "-o", "o", "--heads", "0", "2"], "heads", [0, 2]),
        (["data", "curate", "d", "-b", "s", "-o", "o", "--size", "4", "--clusters", "8,4"], "clusters", [8, 4]),
        (
            ["data", "curate", "d", "-b", "s", "-o", "o", "--size", "4", "--resample-size", "3", "2"],
            "resample_size",
            [3, 2],
        ),
        (["info", "arch:vit_tiny", "--image-size", "224,320"], "image_size", [224, 320]),
        (["info", "arch:vit_tiny", "--image-size", "224"], "image_size", [224]),
    ],
)
def test_number_lists_take_commas_as_embed_window_and_bbox_do(argv, dest, value):
    """`viz attention --window 0,0,64,64` was "expected 4 arguments", `--heads 0,1` "invalid int value: '0,1'"."""
    assert getattr(_parse(argv), dest) == value


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--window", "0,0,32"], "argument --window: expected 4 whole numbers (space- or comma-separated), got 3"),
        (["--heads", "0,a"], "argument --heads: 'a' is not a whole number"),
    ],
)
def test_number_lists_refuse_a_wrong_count_or_word_in_one_line(extra, said, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["viz", "attention", "x.tif", "-b", "s", "-o", "o", *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and said in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flag", "value"), [("--samples", "0"), ("--sample", "-3"), ("--tile-size", "-8"), ("--tile", "0")]
)
def test_data_stats_counts_out_of_range_name_the_flag(flag, value, tmp_path, capsys):
    """`data stats --samples 0` said "samples must be > 0, got 0", `--tile-size -8` "tile_size=-8 must be ...":
    the key, not the flag given; now argparse's line names the flag, as data preview's --samples did."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["data", "stats", str(tmp_path / "x.tif"), "--out", str(tmp_path / "s.yaml"), flag, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"{value} is out of range: give a whole number >= 1" in err
    assert re.search(rf"argument [-a-z/]*{flag}[/:]", err), err  # argument --samples/--sample: ...


@pytest.mark.parametrize("flag", ["--bands", "--src-bands"])
def test_convert_refuses_band_numbers_where_it_matches_names(flag, tmp_path, capsys):
    """`convert --bands 4 3 2 1 --fill mean` wrote a backbone whose every band had the mean kernel (numbers match
    none of the checkpoint's names R, G, B; only a warning said so); now one line before anything is read."""
    from geodino.models import build_model
    from geodino.models.checkpoints import save_backbone

    src = save_backbone(build_model("vit_tiny", depth=1).eval(), tmp_path / "m.pth")
    out = tmp_path / "o.pth"
    assert cli.main(["convert", str(src), str(out), flag, "4", "3", "2", "1", "--fill", "mean"]) == 2
    err = capsys.readouterr().err
    assert f"{flag} 4 3 2 1: geodino convert takes band names" in err and "not numbers such as 4" in err
    assert not out.exists()
    with pytest.warns(UserWarning, match=r"1 band \(nir\) match(es)? no band of checkpoint"):
        assert (
            cli.main(["convert", str(src), str(out), "--bands", "R,G,B,nir", "--fill", "mean"]) == 0
        )  # names: as before


def test_demo_takes_o_for_out_as_every_other_command():
    assert _parse(["demo", "-o", "elsewhere"]).out == _parse(["demo", "--out", "elsewhere"]).out == "elsewhere"
