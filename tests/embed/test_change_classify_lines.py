"""`geodino embed change` and `embed classify` name the `.qml` and `.sld` styles written beside each COG in their
printed line, as pca/cluster/similar do (0bcad83): a GeoServer/MapServer user is told the SLD is there. The PNG
quick-looks too, as docs/embed.md says every product does: the classify line left out MAP.png and the change line
the mask's PNG."""

from __future__ import annotations

import warnings

from geodino.embed.style import qml_path, sld_path


def _main(monkeypatch, argv: list[str]) -> int:
    from geodino import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty change mask, a class in one group of labels: said, not checked
        return cli.main(argv)


def test_change_line_names_the_styles_of_both_cogs(written, tmp_path, monkeypatch, capsys):
    feats, out, mask = written["cog"], tmp_path / "c.tif", tmp_path / "m.tif"
    argv = ["embed", "change", str(feats), str(feats), "--out", str(out), "--threshold", "0.5", "--mask", str(mask)]
    capsys.readouterr()
    assert _main(monkeypatch, argv) == 0
    line = capsys.readouterr().out.strip()
    head = f"change: {out} (cosine distance, p99 "
    assert line.startswith(head)
    rest = line[len(head) :]
    p99 = rest.split(")", 1)[0]
    assert p99 == "0.000"  # A and B are one raster: every distance is 0 (printed 0.001, its histogram bin's top)
    assert line == (
        f"{head}{p99}), {tmp_path / 'c.qml'}, {tmp_path / 'c.sld'}, {tmp_path / 'c.png'}; {mask}: 0.0% of "
        f"{rest.split(' of ', 1)[1].split(' changed')[0]} changed (threshold 0.500, given), {tmp_path / 'm.qml'}, "
        f"{tmp_path / 'm.sld'}, {tmp_path / 'm.png'}"
    )
    for p in (out, mask):
        assert qml_path(p).is_file() and sld_path(p).is_file() and p.with_suffix(".png").is_file()


def test_classify_line_names_the_styles(written, tmp_path, monkeypatch, capsys):
    out = tmp_path / "k.tif"
    argv = ["embed", "classify", str(written["cog"]), str(written["labels"]), "--column", "cover", "--out", str(out)]
    capsys.readouterr()
    assert _main(monkeypatch, argv) == 0
    line = capsys.readouterr().out.strip()
    head = f"classify: {out} (2 classes: a, b; class names also in {out}.aux.xml), {tmp_path / 'k.qml'}, "
    assert line.startswith(head + f"{tmp_path / 'k.sld'}, {tmp_path / 'k.png'}; "), line
    assert qml_path(out).is_file() and sld_path(out).is_file() and (tmp_path / "k.png").is_file()
