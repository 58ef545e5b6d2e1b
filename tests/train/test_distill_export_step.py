"""A distilled student's export records its step, as a pretraining export does (docs/pretraining.md, Export:
`X.heads.pth` holds `"step"`, the STAC item `geodino:step`; "distillation exports ... are written the same way").
The students' exports had neither, so an export could not tell how long its student was distilled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from geodino.train.distill import distill
from tests.train.test_distill import _cfg


@pytest.fixture(scope="module")
def distilled(images: Path, tmp_path_factory) -> tuple[dict[str, Path], list[list[float]]]:
    """One finished run of test_distill's two students (shared by this module's tests): its exports, and the y of the
    'ln K' lines of every figure it saved."""
    from matplotlib.figure import Figure

    refs: list[list[float]] = []
    original = Figure.savefig

    def record(fig, *args, **kwargs):
        refs.append([ln.get_ydata()[0] for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == "ln K"])
        return original(fig, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Figure, "savefig", record)
        exports = distill(_cfg(images, tmp_path_factory.mktemp("export_step") / "run"))
    return exports, refs


def test_a_distilled_students_export_records_its_step(distilled) -> None:
    exports, _ = distilled
    for name, pth in exports.items():
        heads = torch.load(pth.with_name(f"{name}.heads.pth"), map_location="cpu", weights_only=False)
        assert heads["step"] == 2, name
        item = json.loads(pth.with_name(f"{name}.stac.json").read_text())
        assert item["properties"]["geodino:step"] == 2, name


def test_a_distilled_students_normalisation_names_the_distillation_data(distilled) -> None:
    """Its record's origin said 'pretraining data (sensor ...)', shown in the STAC item's description. The run's
    curves.png draws ln K of the teacher head's prototypes on each student's losses (it had no ln K line)."""
    import math

    from geodino.models.checkpoints import read_backbone_weights

    exports, refs = distilled
    for name, pth in exports.items():
        origin = read_backbone_weights(pth).normalization["origin"]
        assert origin.startswith("distillation data (") and "pretraining" not in origin, (name, origin)
    k = int(torch.load(next(iter(exports.values())).with_name(f"{next(iter(exports))}.heads.pth"), weights_only=False)[
        "dino_head"]["last_layer.weight"].shape[0])  # fmt: skip
    assert refs and refs[-1] == [math.log(k)] * len(exports)
