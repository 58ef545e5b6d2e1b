"""A folder that is no HF/timm model folder is refused naming the file to pass: a geodino run folder (its export or
checkpoint), its checkpoints/ folder, a sharded checkpoint (export it first), a folder of exports. It said "has no
config.json; pass an HF DINOv3ViTModel folder or a file" for all of them."""

from __future__ import annotations

import pytest

from geodino.errors import CheckpointError
from geodino.models.checkpoints import read_backbone_weights
from geodino.models.checkpoints.files import load_file


def _touch(path, *names):
    for n in names:
        (path / n).parent.mkdir(parents=True, exist_ok=True)
        (path / n).write_bytes(b"x")
    return path


@pytest.mark.parametrize(
    ("names", "says"),
    [
        (
            ("config.yaml", "export/teacher.pth", "export/teacher.heads.pth", "checkpoints/last.ckpt"),
            r"it is a geodino run folder; pass its export {p}/export/teacher.pth \(or its checkpoint "
            r"{p}/checkpoints/last.ckpt\)$",
        ),
        (("config.yaml", "vits/vits.pth"), r"it is a geodino run folder; pass its export {p}/vits/vits.pth$"),
        (
            ("checkpoints/step_00000002.ckpt", "checkpoints/step_00000010.ckpt"),
            r"run folder; pass its checkpoint {p}/checkpoints/step_00000010.ckpt \(or `geodino export` it first\)$",
        ),
        (("config.yaml",), r"run folder with no checkpoint or export yet"),
        (("step_00000004.ckpt",), r"it is a run's checkpoint folder; pass its checkpoint {p}/step_00000004.ckpt$"),
        (("meta.pt",), r"sharded training checkpoint \(meta.pt\); export its backbone first, `geodino export {p} "),
        (("a.pth", "a.heads.pth"), r"it holds a.pth: pass that file, {p}/a.pth$"),
        (("b.safetensors", "a.pth", "a.heads.pth"), r"it holds a.pth, b.safetensors: pass one of those files"),
        (("notes.txt",), r"\(not an HF or timm model folder\); pass a backbone file"),
    ],
)
def test_a_folder_names_the_file_to_pass(tmp_path, names, says):
    p = _touch(tmp_path / "run", *names)
    with pytest.raises(CheckpointError, match=r"^checkpoint folder .*run has no config.json.*" + says.format(p=p)):
        read_backbone_weights(p)


def test_export_of_a_run_folder_names_its_checkpoint(tmp_path):
    p = _touch(tmp_path / "run", "config.yaml", "checkpoints/last.ckpt")
    with pytest.raises(CheckpointError, match=rf"has no meta.pt; .*\(a run's checkpoints are files: pass {p}/check"):
        load_file(p)


def test_timms_local_dir_prefix_names_the_folder(tmp_path):
    with pytest.raises(
        CheckpointError, match=r"not found: local-dir: is timm's prefix .*pass the folder itself \(tb\)$"
    ):
        read_backbone_weights("local-dir:tb")


@pytest.mark.parametrize("blank", ["", " "])
def test_an_empty_path_is_named_empty(blank):
    with pytest.raises(CheckpointError, match=r"^empty checkpoint path; pass a backbone file"):
        read_backbone_weights(blank)
