"""Every export carries a STAC item (MLM extension) that catalogues it: read back with pystac's extension classes,
the fields equal the export's own record (bands, mean/std, DN scale, embedding width), the asset hrefs resolve to
the three files, and an export that is refused or killed leaves no item."""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from geodino.errors import InputError
from geodino.models import build_model
from geodino.models.checkpoints import save_export
from geodino.models.checkpoints.stac_item import export_item_path
from tests.models.test_normalization_records import REC  # one record for both: the item must equal it

pystac = pytest.importorskip("pystac")
from pystac.extensions.mlm import AssetGeneralMLMExtension, MLMExtension, ValueScaling  # noqa: E402
from pystac.extensions.raster import RasterExtension  # noqa: E402


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("vit_tiny", patch_size=8, in_chans=4, depth=2, n_storage_tokens=1)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _item_id(pth: Path) -> str:
    """The documented id: the stem and 12 hex of a sha256 over the three files' sha256 multihashes, joined by
    newlines (computed here from the files, not by the code under test)."""
    files = [pth, pth.with_suffix(".safetensors"), pth.with_suffix(".heads.pth")]
    joined = "\n".join("1220" + _sha256(f) for f in files)
    return f"{pth.stem}-" + hashlib.sha256(joined.encode()).hexdigest()[:12]


def test_the_export_item_reads_back_with_the_records_fields(tmp_path, model):
    paths = save_export(tmp_path / "exp" / "teacher.pth", model.state_dict(), dict(model.config), normalization=REC)
    item_path = tmp_path / "exp" / "teacher.stac.json"
    assert export_item_path(paths[0]) == item_path and export_item_path(tmp_path / "exp" / "teacher") == item_path
    item = pystac.Item.from_file(str(item_path))
    # the id: the stem and the files' sha256 (every run's end export is `teacher`: the stem alone collides)
    assert item.id == _item_id(paths[0])
    assert item.geometry is None and item.bbox is None and item.datetime is not None
    mlm = MLMExtension.ext(item)
    assert MLMExtension.has_extension(item) and RasterExtension.has_extension(item)
    assert mlm.mlm_name == "geodino teacher" and mlm.architecture == "Vision Transformer"
    assert [str(t) for t in mlm.tasks] == ["similarity-search"]  # the schema's enum has no feature-extraction
    assert mlm.framework == "PyTorch" and torch.__version__.startswith(mlm.framework_version)
    assert mlm.total_parameters == sum(p.numel() for p in model.parameters())  # a state_dict: buffers left out
    # the record's origin says where its statistics came from, not what the weights were trained on
    assert mlm.pretrained is True and mlm.pretrained_source is None
    assert f"statistics from {REC['origin']}" in item.properties["mlm:input"][0]["description"]
    (inp,) = mlm.input
    assert list(inp.bands) == REC["bands"]
    assert inp.input.shape == [-1, 4, -1, -1] and inp.input.dim_order == ["batch", "channel", "height", "width"]
    # the spec's value_scaling is a list (one per band); pystac-ext-mlm 1.4.1's accessor wraps it as one object
    scaling = [ValueScaling(v) for v in inp.properties["value_scaling"]]
    assert [str(v.type) for v in scaling] == ["z-score"] * 4
    # in DN units (what an MLM tool reads from the data): the record's reflectance statistics folded with its scale
    assert [v.mean for v in scaling] == pytest.approx([m / 1e-4 for m in REC["mean"]])
    assert [v.stddev for v in scaling] == pytest.approx([s / 1e-4 for s in REC["std"]])
    from geodino.data.sensors import Sensor

    dn = torch.tensor([[[[400.0]], [[900.0]], [[700.0]], [[2500.0]]]])  # the z-score equals geodino's normalisation
    sensor = Sensor("demo4", tuple(REC["bands"]), 1e-4, tuple(REC["mean"]), tuple(REC["std"]), rgb_like=False)
    want = sensor.normalize(dn).flatten().tolist()
    assert [(x - v.mean) / v.stddev for x, v in zip([400.0, 900.0, 700.0, 2500.0], scaling)] == pytest.approx(want)
    cls, patches = mlm.output
    assert cls.result.shape == [-1, model.embed_dim] and patches.result.shape == [-1, -1, model.embed_dim]
    hyper = mlm.hyperparameters.to_dict()
    assert hyper["patch_size"] == 8 and hyper["depth"] == 2
    # the assets: the two model artifacts (role mlm:model) and the heads sidecar, hrefs relative to the item
    assert set(item.assets) == {"model", "model_safetensors", "heads"}
    for key, path in zip(["model", "model_safetensors", "heads"], paths, strict=True):
        asset = item.assets[key]
        assert asset.href == f"./{path.name}" and asset.get_absolute_href() == str(path.resolve())
        assert asset.extra_fields["file:checksum"] == "1220" + _sha256(path)
        assert asset.extra_fields["file:size"] == path.stat().st_size
    kinds = {k: AssetGeneralMLMExtension.ext(item.assets[k]).artifact_type for k in ("model", "model_safetensors")}
    assert kinds == {"model": "torch.save", "model_safetensors": "safetensors.torch.save_file"}
    assert "mlm:model" in item.assets["model"].roles and "mlm:model" not in item.assets["heads"].roles
    bands = RasterExtension.ext(item.assets["model"]).bands
    assert [b.properties["name"] for b in bands] == REC["bands"]
    assert all(b.scale is None for b in bands)  # the DN scale is folded into value_scaling, not given twice
    # the weights the item names are the export's: the .pth loads strictly into the architecture it describes
    rebuilt = build_model(**hyper)
    rebuilt.load_state_dict(torch.load(item.assets["model"].get_absolute_href(), weights_only=True), strict=True)


def test_item_ids_differ_across_runs_and_repeat_for_the_same_weights(tmp_path, model):
    """Two runs' end exports are both `teacher`: a catalogue keyed on id must see two items; the same weights
    exported again (byte-reproducible) keep their id, so a catalogue server updates instead of duplicating."""
    other = build_model("vit_tiny", patch_size=8, in_chans=4, depth=2, n_storage_tokens=1)  # other random weights

    def item_id(folder: str, m: nn.Module) -> str:
        save_export(tmp_path / folder / "teacher.pth", m.state_dict(), dict(m.config), normalization=REC)
        return json.loads((tmp_path / folder / "teacher.stac.json").read_text())["id"]

    a, b, again = item_id("run1", model), item_id("run2", other), item_id("run3", model)
    assert a != b and a == again and a.startswith("teacher-") and len(a) == len("teacher-") + 12
    # the same weights with another normalisation record are another model to a user: another id (the old id
    # hashed the .pth alone and gave both the same)
    other_record = {**REC, "mean": [m + 1.0 for m in REC["mean"]]}
    save_export(tmp_path / "run4" / "teacher.pth", model.state_dict(), dict(model.config), normalization=other_record)
    assert json.loads((tmp_path / "run4" / "teacher.stac.json").read_text())["id"] not in (a, b)


def test_an_export_without_record_or_config_still_gets_a_valid_item(tmp_path, model):
    """No normalisation, no build kwargs (inferred from the weights), a stem the MLM name pattern would refuse."""
    save_export(tmp_path / "1.pth", model, None)
    item = pystac.Item.from_file(str(tmp_path / "1.stac.json"))
    mlm = MLMExtension.ext(item)
    assert mlm.mlm_name == "geodino 1"  # the schema's pattern: a letter first, a letter or digit last
    (inp,) = mlm.input
    assert list(inp.bands) == ["band_1", "band_2", "band_3", "band_4"] and inp.value_scaling is None
    assert "mlm:pretrained_source" not in item.properties
    assert mlm.hyperparameters.to_dict()["embed_dim"] == model.embed_dim
    assert mlm.hyperparameters.to_dict()["in_chans"] == 4
    assert all("scale" not in b for b in item.assets["model"].extra_fields["raster:bands"])


def test_geodino_export_of_a_training_checkpoint_names_its_data_and_step(tmp_path, model, capsys):
    from geodino.cli import main
    from geodino.train.checkpointing import FORMAT

    state = {f"arch.teacher.backbone.{k}": v for k, v in model.state_dict().items()}
    paths = ["/data/a/", "b.tif", "c.tif", "d.tif"]
    data = {"sources": [{"type": "raster", "paths": paths, "sensor": None}, {"type": "images", "paths": ["e/"]}]}
    geo = {"format": FORMAT, "step": 7, "config": {"data": data, "init_from": "base.pth"}, "backbone": model.config}
    torch.save({"state_dict": state, "geodino": geo}, tmp_path / "last.ckpt")
    with pytest.warns(UserWarning, match="records no input normalisation"):
        assert main(["export", str(tmp_path / "last.ckpt"), str(tmp_path / "exp" / "bb.pth")]) == 0
    assert str(tmp_path / "exp" / "bb.pth") in capsys.readouterr().out
    item = pystac.Item.from_file(str(tmp_path / "exp" / "bb.stac.json"))
    assert item.properties["mlm:pretrained_source"] == (
        "raster /data/a/, b.tif, c.tif and 1 more; images e/, continued from base.pth"
    )
    assert item.properties["geodino:step"] == 7 and item.properties["geodino:network"] == "teacher"
    assert MLMExtension.ext(item).input[0].value_scaling is None  # no record: nothing to standardise with


def test_a_record_of_another_band_count_gives_no_scaling(tmp_path, model):
    """A record whose band count is not the patch embedding's (a 12-band sensor on a 4-band model) cannot scale
    the input: the item says so instead of listing 12 means for 4 channels."""
    rec = {"bands": [f"B{i}" for i in range(6)], "mean": [0.1] * 6, "std": [0.2] * 6}
    save_export(tmp_path / "m", model, dict(model.config), normalization=rec)
    (inp,) = MLMExtension.ext(pystac.Item.from_file(str(tmp_path / "m.stac.json"))).input
    assert inp.value_scaling is None and list(inp.bands) == [f"band_{i}" for i in range(1, 5)]
    assert "6 bands" in inp.description


def test_a_refused_or_killed_export_leaves_no_item(tmp_path, model, monkeypatch):
    from geodino.train.checkpointing import FORMAT, export

    state = {f"arch.teacher.backbone.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "geodino": {"format": FORMAT, "backbone": model.config}}, tmp_path / "last.ckpt")
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "bb.pth").write_bytes(b"old")
    with pytest.raises(InputError, match="already exists"):
        export(tmp_path / "last.ckpt", tmp_path / "exp" / "bb.pth")
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["bb.pth"]

    import geodino.models.checkpoints.save as save

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(save, "write_heads", killed)  # killed after the weights, before the item
    with pytest.raises(KeyboardInterrupt):
        save_export(tmp_path / "k" / "bb", model, dict(model.config), normalization=REC)
    assert not export_item_path(tmp_path / "k" / "bb").exists()
    assert not [p for p in (tmp_path / "k").iterdir() if p.name.endswith(".json")]


def test_a_killed_re_export_leaves_no_stale_item_and_a_users_item_is_not_replaced(tmp_path, model, monkeypatch):
    """A second export onto the same name, killed after the new `.pth`, must not leave the first export's item
    (its checksums describe weights that are gone); `geodino export` refuses an existing `X.stac.json` without
    --overwrite, as it refuses the weight files."""
    from geodino.cli import main
    from geodino.train.checkpointing import FORMAT

    save_export(tmp_path / "r" / "bb", model, dict(model.config), normalization=REC)
    assert export_item_path(tmp_path / "r" / "bb").exists()
    import geodino.models.checkpoints.save as save

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    first = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    monkeypatch.setattr(save, "save_safetensors", killed)  # the new .pth is staged, then the run dies
    with pytest.raises(KeyboardInterrupt):
        save_export(tmp_path / "r" / "bb", build_model("vit_tiny", patch_size=8, depth=1, in_chans=4), None)
    # the new files are renamed into place only once all are written: the first export, item included, is whole
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == first
    monkeypatch.undo()

    state = {f"arch.teacher.backbone.{k}": v for k, v in model.state_dict().items()}
    geo = {"format": FORMAT, "backbone": model.config}
    torch.save({"state_dict": state, "geodino": geo}, tmp_path / "last.ckpt")
    mine = tmp_path / "e" / "x.stac.json"
    mine.parent.mkdir()
    mine.write_text('{"mine": true}')
    assert main(["export", str(tmp_path / "last.ckpt"), str(tmp_path / "e" / "x.pth")]) == 2  # refused first
    assert mine.read_text() == '{"mine": true}' and not (tmp_path / "e" / "x.pth").exists()
    with pytest.warns(UserWarning, match="records no input normalisation"):
        assert main(["export", str(tmp_path / "last.ckpt"), str(tmp_path / "e" / "x.pth"), "--overwrite"]) == 0
    assert pystac.Item.from_file(str(mine)).id == _item_id(tmp_path / "e" / "x.pth")


def test_a_distilled_student_item_names_its_teacher(tmp_path, model):
    from geodino.data.config import DataConfig, SourceConfig
    from geodino.models.checkpoints.stac_item import distill_properties
    from geodino.train.distill.export import export_student

    student = nn.Module()
    student.backbone, student.dino_head, student.ibot_head = model, nn.Linear(2, 2), nn.Linear(2, 2)
    arch = types.SimpleNamespace(students_ema={"small": student}, students={})
    props = distill_properties("teacher.pth", DataConfig(sources=[SourceConfig(type="images", paths=["chips/"])]))
    pth = export_student(arch, "small", tmp_path, "ema", REC, props)
    item = json.loads((tmp_path / "small" / "small.stac.json").read_text())
    assert pth == tmp_path / "small" / "small.pth"
    assert item["properties"]["mlm:pretrained_source"] == "distilled from teacher.pth on images chips/"
    assert item["properties"]["geodino:network"] == "student small (ema)"
