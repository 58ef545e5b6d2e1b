"""The demo's steps, run through the public CLI at the tiniest size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geodino.demo_data import CLASSES, landcover_map, write_demo_scene


def test_demo_scene_is_georeferenced_and_has_every_class(tmp_path):
    import rasterio

    scene, labels = write_demo_scene(tmp_path / "s.tif", size=128, seed=3)
    with rasterio.open(scene) as src, rasterio.open(labels) as lab:
        assert (src.count, src.dtypes[0], src.nodata, src.crs.to_epsg()) == (4, "uint16", 0, 32633)
        assert src.transform == lab.transform and src.descriptions == ("blue", "green", "red", "nir")
        data, lc = src.read(), lab.read(1)
    assert (data[:, lc == 255] == 0).all() and (data[:, lc != 255] > 0).all()  # nodata corner, valid elsewhere
    assert set(np.unique(landcover_map(256, 0))) == set(range(len(CLASSES)))
    # NIR/red separates vegetation from water, as real spectra do
    ndvi = (data[3].astype(float) - data[2]) / (data[3].astype(float) + data[2] + 1e-6)
    assert ndvi[lc == 1].mean() > 0.4 and ndvi[lc == 2].mean() > 0.4 and ndvi[lc == 0].mean() < 0


def test_demo_forest_and_cropland_share_colours_and_differ_in_shape():
    """The demo's probe table tests shape, not colour: fitted in the west of the demo scene, a logistic regression on
    the per-band mean and std of 32 px windows does not tell forest from cropland in the east, while cropland rows
    orient the texture one way in each field and round crowns do not."""
    from sklearn.linear_model import LogisticRegression

    from geodino.demo_data import paint_scene

    labels = landcover_map(512, 0)
    refl = paint_scene(labels, 0)
    feats, cls, col = [], [], []
    for r in range(0, 512 - 32, 16):
        for c in range(0, 512 - 32, 16):
            for k in (1, 2):
                if (labels[r : r + 32, c : c + 32] == k).mean() > 0.9:
                    px = refl[:, r : r + 32, c : c + 32].reshape(4, -1)
                    feats.append(np.concatenate([px.mean(1), px.std(1)]))
                    cls.append(k)
                    col.append(c)
    x, y, west = np.array(feats), np.array(cls), np.array(col) < 300
    assert west.sum() > 50 and (~west).sum() > 20 and set(y[~west]) == {1, 2}
    x = (x - x[west].mean(0)) / x[west].std(0)
    colour = LogisticRegression(max_iter=2000).fit(x[west], y[west])
    assert colour.score(x[~west], y[~west]) < 0.7  # 0.28 on this scene: material drift misleads it

    # shape: the coherence of the NIR gradient's orientation over 16 px windows (structure tensor): rows point one
    # way (near 1), round crowns every way (near 0)
    gy, gx = np.gradient(refl[3])

    def coherence(cls: int) -> float:
        values = []
        for r in range(0, 512 - 16, 16):
            for c in range(0, 512 - 16, 16):
                if (labels[r : r + 16, c : c + 16] == cls).all():
                    x, y = gx[r : r + 16, c : c + 16], gy[r : r + 16, c : c + 16]
                    jxx, jyy, jxy = (x * x).sum(), (y * y).sum(), (x * y).sum()
                    values.append(np.hypot(jxx - jyy, 2 * jxy) / (jxx + jyy))
        return float(np.mean(values))

    assert coherence(2) > coherence(1) + 0.2  # 0.54 against 0.23


@pytest.mark.slow
def test_demo_runs_every_step(tmp_path):
    import rasterio

    from geodino.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "tiny"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    paths = summary["paths"]
    for key in ("backbone", "features", "pca_cog", "pca_png", "sensor"):
        assert (out / paths[key]).exists(), key
    with rasterio.open(paths["scene"]) as src, rasterio.open(paths["features"]) as feat:
        assert feat.crs == src.crs
        assert feat.transform.a == pytest.approx(src.transform.a * 8)  # patch-grid output (patch 8)
        assert (feat.transform.c, feat.transform.f) == (src.transform.c, src.transform.f)
        assert feat.count == 192
    # the demo's raster is the one of its backbone normalised with the sensor it was trained with
    ref = out / "features_ref.tif"
    argv = ["embed", paths["scene"], "--backbone", f"{paths['backbone']}?sensor={paths['sensor']}", "--out", str(ref)]
    assert main([*argv, "--tile", "128", "--overlap", "32", "--sensor", paths["sensor"], "--no-progress"]) == 0
    with rasterio.open(paths["features"]) as a, rasterio.open(ref) as b:
        assert np.array_equal(a.read(), b.read(), equal_nan=True)
    with rasterio.open(paths["pca_cog"]) as pca:
        assert (pca.count, pca.dtypes[0]) == (3, "uint8")
    assert [c.split()[1] for c in summary["commands"]] == [
        "data",
        "pretrain",
        "pretrain",
        "export",
        "embed",
        "embed",
        "probe",
    ]
    metrics = summary["metrics"]
    assert 0.0 <= metrics["demo_landcover/knn_top1"]["pretrained"] <= 1.0
    assert set(metrics["demo_landcover/linear_top1"]) == {"pretrained", "random", "colour"}
    assert "--compare baseline:colour?patch_size=8" in summary["commands"][-1].replace("'", "")
    # the demo's table is the comparison's, and the comparison holds each run's own result
    comparison = json.loads((out / "probe" / "comparison.json").read_text())
    for name, folder in zip(("pretrained", "random", "colour"), comparison["folders"], strict=True):
        rows = json.loads((out / folder / "results.json").read_text())["rows"]
        own = next(r["value"] for r in rows if r["metric"] == "knn_top1")
        assert metrics["demo_landcover/knn_top1"][name] == own, name
    assert (out / paths["probe_comparison"]).is_file()
    # the paired test of pretrained vs colour statistics, from the comparison (a p in [0, 1] per top-1 row)
    assert set(summary["mcnemar_vs_colour"]) == {"demo_landcover/knn_top1", "demo_landcover/linear_top1"}
    assert all(0.0 < t["p"] <= 1.0 for t in summary["mcnemar_vs_colour"].values())


def test_demo_verdict_says_whether_pretraining_beat_colour_statistics():
    from geodino.demo import _baseline_verdict

    beat = {("t", "knn_top1"): {"pretrained": 0.9, "random": 0.2, "colour": 0.8}}
    assert "score above colour statistics on every metric (by at least 0.100)" in _baseline_verdict(beat)
    level = {**beat, ("t", "linear_top1"): {"pretrained": 0.95, "colour": 0.95}}
    assert "Colour statistics match or outscore the pretrained features here" in _baseline_verdict(level)
    assert _baseline_verdict({("t", "knn_top1"): {"pretrained": 0.9}}) == ""


def test_demo_embed_step_uses_the_normalisation_the_export_records(tmp_path):
    """The demo's export + embed commands (as `run_demo` types them) give the raster of a backbone normalised
    with the sensor it was trained with; without the record they would not."""
    import rasterio
    import torch

    from geodino.cli import main
    from geodino.data.sensors import Sensor, save_sensor_yaml
    from geodino.models import build_model
    from geodino.train.checkpointing import FORMAT

    scene, _ = write_demo_scene(tmp_path / "scene.tif", size=64)
    sensor = Sensor(
        "demo4", ("blue", "green", "red", "nir"), 1e-4, (0.05, 0.08, 0.07, 0.3), (0.02, 0.03, 0.04, 0.1), False
    )
    yaml = save_sensor_yaml(sensor, tmp_path / "sensor.yaml")
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=2)
    data = {"sources": [{"name": "demo", "type": "raster", "paths": [str(tmp_path)], "sensor": str(yaml)}]}
    ckpt = {
        "state_dict": {f"arch.teacher.backbone.{k}": v for k, v in model.state_dict().items()},
        "geodino": {"format": FORMAT, "config": {"data": data}, "backbone": model.config},
    }
    torch.save(ckpt, tmp_path / "last.ckpt")
    backbone = tmp_path / "export" / "backbone.pth"
    assert main(["export", str(tmp_path / "last.ckpt"), str(backbone), "--overwrite"]) == 0

    def embed(spec: str, out: str) -> torch.Tensor:
        argv = ["embed", str(scene), "--backbone", spec, "--out", str(tmp_path / out), "--tile", "64"]
        argv += ["--overlap", "16", "--sensor", str(yaml), "--overwrite", "--no-progress"]
        assert main(argv) == 0
        with rasterio.open(tmp_path / out) as src:
            return torch.from_numpy(src.read())

    demo = embed(str(backbone), "demo.tif")
    right = embed(f"{backbone}?sensor={yaml}", "right.tif")
    assert torch.equal(torch.nan_to_num(demo, 9.0), torch.nan_to_num(right, 9.0))
    plain = tmp_path / "plain" / "backbone.pth"  # the same weights without the sidecar: identity stats
    plain.parent.mkdir()
    plain.write_bytes(backbone.read_bytes())
    with pytest.warns(UserWarning, match=r"\?sensor=NAME"):
        wrong = embed(str(plain), "wrong.tif")
    assert not torch.allclose(torch.nan_to_num(wrong), torch.nan_to_num(right), atol=1e-3)


def test_demo_says_whether_the_gain_over_colour_is_within_the_test_set_intervals():
    from geodino.demo import _interval_note

    def comparison(pre: list[float], col: list[float]) -> dict:
        ci = {"pre": pre, "rnd": [0.1, 0.2], "col": col}
        return {"backbones": ["pre", "rnd", "col"], "rows": [{"metric": "knn_top1", "ci95": ci}]}

    assert "overlap on 1 of 1 top-1 metrics" in _interval_note(comparison([0.82, 0.95], [0.74, 0.90]))
    assert "do not overlap" in _interval_note(comparison([0.91, 0.97], [0.74, 0.90]))
    assert _interval_note({"backbones": ["pre", "col"], "rows": [{"metric": "knn_top1"}]}) == ""


def test_demo_words_its_verdict_from_the_paired_mcnemar_p(capsys):
    """The demo said the gain over colour statistics 'is within sampling noise' whenever the Wilson intervals
    overlapped; both backbones score the same chips, so the paired (McNemar) p decides, and summary.json has it.
    The words are comparison.md's (`compare_verdict`), printed after the interval screen."""
    from geodino.demo import _interval_note, _paired_tests, _print_verdict

    ci = {"pre": [0.70, 0.86], "rnd": [0.1, 0.2], "col": [0.60, 0.78]}
    vals = {"pre": 0.8, "rnd": 0.15, "col": 0.7}
    rows = [
        {"task": "t", "metric": "knn_top1", "values": vals, "ci95": ci},
        {"task": "t", "metric": "linear_top1", "values": vals, "ci95": ci},
        {"task": "t", "metric": "knn_macro_f1", "values": vals},
    ]
    rows[0]["mcnemar"] = {"rnd": {}, "col": {"n": 85, "b": 9, "c": 1, "p": 2 * (1 + 10) / 2**10}}  # 2 P[X <= 1]
    rows[1]["mcnemar"] = {"col": {"n": 85, "b": 5, "c": 3, "p": 0.7265625}}
    comparison = {"backbones": ["pre", "rnd", "col"], "rows": rows}
    paired = _paired_tests(comparison)
    assert set(paired) == {"t/knn_top1", "t/linear_top1"} and paired["t/knn_top1"]["b"] == 9
    _print_verdict(comparison)
    out = capsys.readouterr().out
    assert out.startswith(_interval_note(comparison) + "\n") and "within sampling noise" not in out
    assert (
        "- the backbone beats col on t/knn_top1: 0.800 vs 0.700 (+0.100; McNemar p = 0.021: unlikely to be "
        "test-set noise)" in out
    )
    assert "- the backbone is ahead of col on t/linear_top1: 0.800 vs 0.700 (+0.100; McNemar p = 0.73: a " in out
    rows[0]["values"] = {"pre": 0.7, "rnd": 0.15, "col": 0.8}
    rows[0]["mcnemar"]["col"] = {"n": 85, "b": 1, "c": 9, "p": 0.021484375}
    _print_verdict(comparison)
    assert (
        "- col beats the backbone on t/knn_top1: 0.800 vs 0.700 (+0.100; McNemar p = 0.021" in capsys.readouterr().out
    )
