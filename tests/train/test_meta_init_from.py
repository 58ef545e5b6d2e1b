"""`init_from` under `trainer.meta_init` (FSDP2 builds the arch on the meta device and applies init_from into the
shards in `SSLModule.configure_model`): the file's fit is checked at start, on the meta-built arch's shapes with
`apply_init`'s own check (`checkpointing.check_init`), so a file that does not fit is refused with the line a run
without meta_init gives, before the run folder changes; one that fits still lands in the shards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from geodino.cli import main
from geodino.config import load_config
from geodino.errors import GeoDinoError
from geodino.models import build_model
from geodino.models.checkpoints import save_export
from geodino.train.pretrain import PretrainConfig, pretrain
from geodino.train.pretrain_build import build_arch
from tests.train.conftest import write_config
from tests.train.test_pretrain_start_undo import _snapshot, _used_folder

ROOT = Path(__file__).resolve().parents[2]
META = ["trainer.strategy=fsdp2", "trainer.meta_init=true"]


def _cfg(tmp_path: Path, data: Path, out: Path, *overrides: str) -> PretrainConfig:
    return load_config(PretrainConfig, write_config(tmp_path / "c.yaml", out, data), list(overrides))


def _arch(tmp_path: Path, data: Path, *overrides: str, seed: int = 7):
    """The tiny config's SSL arch, built in full (what a file that fits was trained with)."""
    torch.manual_seed(seed)
    return build_arch(_cfg(tmp_path, data, tmp_path / "unused", *overrides))


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_data) -> dict[str, tuple[Path, list[str], str]]:
    """{case: (init_from file, extra overrides, the start of its refusal)}: files the tiny config does not fit."""
    root = tmp_path_factory.mktemp("init")
    fits = _arch(root, tiny_data)
    full = fits.teacher["backbone"].state_dict()
    cases: dict[str, tuple[Path, list[str], str]] = {}
    # an export of depth 1: the recorded build kwargs differ, so the line names them and the keys to set
    depth1 = save_export(
        root / "depth1" / "x.pth",
        _arch(root, tiny_data, "ssl.student.overrides.depth=1").teacher["backbone"].state_dict(),
        {**fits.teacher["backbone"].config, "depth": 1},
    )[0]
    cases["depth"] = (depth1, [], f"init_from {depth1} was trained with depth=1 but this config builds depth=2")
    # plain backbones (no build kwargs recorded): the key/shape rule of load_strict
    wide = build_model("vit_tiny", patch_size=8, depth=2, embed_dim=96, num_heads=3)
    torch.save(wide.state_dict(), root / "wide.pth")
    n = sum(v.shape != full[k].shape for k, v in wide.state_dict().items() if k in full)
    cases["embed dim"] = (
        root / "wide.pth",
        [],
        f"checkpoint {root / 'wide.pth'} does not fit the student backbone ({n} shape mismatches: cls_token [1,1,96] "
        "in the file vs [1,1,192] in the model",
    )
    patch16 = dict(full)
    patch16["patch_embed.proj.weight"] = torch.zeros(192, 3, 16, 16)
    torch.save(patch16, root / "patch16.pth")
    cases["patch size"] = (
        root / "patch16.pth",
        [],
        f"checkpoint {root / 'patch16.pth'} does not fit the student backbone (1 shape mismatch: "
        "patch_embed.proj.weight",
    )
    cut = {k: v for k, v in full.items() if not k.startswith("blocks.1.")}
    torch.save(cut, root / "cut.pth")
    cases["missing keys"] = (
        root / "cut.pth",
        [],
        f"checkpoint {root / 'cut.pth'} does not fit the student backbone ({len(full) - len(cut)} missing keys: "
        "blocks.1.",
    )
    # a backbone that fits with heads of other sizes: the heads are checked as well
    small_heads = _arch(root, tiny_data, "ssl.dino.head_n_prototypes=32")
    heads = {"dino_head": small_heads.teacher["dino_head"], "ibot_head": fits.teacher["ibot_head"]}
    with_heads = save_export(
        root / "heads" / "x.pth", fits.teacher["backbone"].state_dict(), dict(fits.teacher["backbone"].config), heads
    )[0]
    cases["head size"] = (with_heads, [], f"checkpoint {with_heads} does not fit the student dino_head (")
    torch.save(fits.teacher["backbone"].state_dict(), root / "fits.pth")
    cases["no student"] = (
        root / "fits.pth",
        ["init_student_from=student"],
        f"init_from file {root / 'fits.pth'} has no student weights",
    )
    return cases


@pytest.mark.parametrize("case", ["depth", "embed dim", "patch size", "missing keys", "head size", "no student"])
def test_an_unfitting_init_from_is_refused_at_start_with_the_line_of_a_run_without_meta_init(
    tiny_data, tmp_path, files, case
) -> None:
    path, extra, line = files[case]
    said = {}
    for name, meta in (("plain", []), ("meta", META)):
        out = tmp_path / name
        before = _used_folder(out)
        with pytest.raises(GeoDinoError) as err:
            pretrain(_cfg(tmp_path, tiny_data, out, f"init_from={path}", *extra, *meta))
        said[name] = str(err.value)
        # refused before the used folder's housekeeping and config.yaml: left byte for byte as it was
        assert _snapshot(out) == before, name
    assert said["meta"] == said["plain"]
    assert said["meta"].startswith(line) and "\n" not in said["meta"], said["meta"]


def test_the_cli_refuses_it_with_exit_code_2_and_the_same_line(tiny_data, tmp_path, files, capsys) -> None:
    path, _, line = files["embed dim"]
    said = {}
    for name, meta in (("plain", []), ("meta", META)):
        out = tmp_path / name
        before = _used_folder(out)
        cfg = write_config(tmp_path / f"{name}.yaml", out, tiny_data)
        assert main(["pretrain", "--config", str(cfg), f"init_from={path}", *meta]) == 2
        said[name] = capsys.readouterr().err.strip().splitlines()[-1]
        assert _snapshot(out) == before, name
    assert said["meta"] == said["plain"] and said["plain"].startswith(f"geodino: error: {line}"), said


_FITTING_RUN = """
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, sys.argv[1])
import geodino.train.module as module_lib
from geodino.config import load_config
from geodino.train.pretrain import PretrainConfig, pretrain
from lightning.pytorch.callbacks import Callback
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

seen = {}


class Spy(Callback):  # the weights once configure_model has sharded, initialised and applied init_from
    def on_train_start(self, trainer, pl_module):
        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        seen["sharded"] = any(type(p).__name__ == "DTensor" for p in pl_module.arch.parameters())
        state = get_model_state_dict(pl_module.arch, options=opts)
        seen["state"] = {k: v.detach().cpu().clone() for k, v in state.items()}


real = module_lib.build_trainer


def build(*args, **kwargs):
    trainer, cb = real(*args, **kwargs)
    trainer.callbacks.append(Spy())
    return trainer, cb


module_lib.build_trainer = build
cfg = load_config(PretrainConfig, Path(sys.argv[2]), sys.argv[4:])
out = pretrain(cfg)
torch.save(seen, sys.argv[3])
import torch.distributed as dist

if dist.is_initialized():
    dist.destroy_process_group()
os._exit(0)  # gloo worker threads can abort at interpreter exit (see the install notes)
"""


def test_a_fitting_init_from_lands_in_the_shards(tiny_data, tmp_path) -> None:
    """Through `pretrain` (1 process, FSDP2 over gloo on CPU, in a subprocess so no process group outlives it): the
    start check passes and the export's backbone and heads are what student and teacher hold when training starts."""
    fits = _arch(tmp_path, tiny_data)
    t = fits.teacher
    heads = {"dino_head": t["dino_head"], "ibot_head": t["ibot_head"]}
    init = save_export(tmp_path / "exp" / "x.pth", t["backbone"].state_dict(), dict(t["backbone"].config), heads)[0]
    script = tmp_path / "run.py"
    script.write_text(_FITTING_RUN)
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    over = [*META, f"init_from={init}", "trainer.max_steps=1", "trainer.loggers=[]"]
    # a fresh process group of its own: no rendezvous settings another test's launcher left in this process
    launch = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")
    env = {k: v for k, v in os.environ.items() if k not in launch}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(script), str(ROOT), str(cfg), str(tmp_path / "seen.pt"), *over]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = torch.load(tmp_path / "seen.pt", weights_only=True)
    assert seen["sharded"]
    state = seen["state"]
    expected = {f"backbone.{k}": v for k, v in t["backbone"].state_dict().items()}
    expected |= {f"{h}.{k}": v for h in ("dino_head", "ibot_head") for k, v in t[h].state_dict().items()}
    for part in ("student", "teacher"):
        for k, v in expected.items():
            torch.testing.assert_close(state[f"{part}.{k}"], v, rtol=0, atol=0, msg=f"{part}.{k}")
    # not the meta init's own draw: a fresh init of another seed differs
    other = _arch(tmp_path, tiny_data, seed=0).student["backbone"].state_dict()
    assert not torch.equal(other["blocks.0.attn.qkv.weight"], state["student.backbone.blocks.0.attn.qkv.weight"])
