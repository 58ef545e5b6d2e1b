"""`geodino pretrain` and `geodino export` end to end, and every bad-input path as one line with exit code 2."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from geodino.cli import main
from geodino.config import load_config
from geodino.errors import CheckpointError, ConfigError, InputError
from geodino.models import build_model
from geodino.train.pretrain import PretrainConfig, pretrain
from tests.train.conftest import ln_k_plateau, write_config


def test_run_folder_contents(tiny_run):
    assert sorted(p.name for p in (tiny_run / "checkpoints").iterdir()) == [
        "last.ckpt",
        "step_00000001.ckpt",
        "step_00000002.ckpt",
    ]
    assert (tiny_run / "config.yaml").read_text().startswith("name: tiny")
    rows = list(csv.DictReader(open(tiny_run / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1]
    for key in (
        "loss",
        "dino_local_loss",
        "dino_global_loss",
        "ibot_loss",
        "koleo_loss",
        "sched/lr",
        "monitor/teacher_entropy",
        "grad_norm/backbone",
    ):
        assert rows[-1][key] != "", key
    assert float(rows[0]["sched/lr"]) == 0.0 and float(rows[1]["sched/lr"]) == pytest.approx(1e-3)
    for name in ("teacher.pth", "teacher.safetensors", "teacher.heads.pth"):
        assert (tiny_run / "export" / name).is_file()
    assert (tiny_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the run draws its curves
    assert (tiny_run / "schedules.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # and its schedules
    for key in ("monitor/teacher_cls_spread", "monitor/teacher_logit_std", "monitor/layerscale_gamma"):
        assert rows[0][key] != "", key


@ln_k_plateau
def test_a_run_shorter_than_log_every_n_steps_still_draws_its_curves(tiny_data, tmp_path, capsys):
    """trainer.log_every_n_steps=10 (the default) and a 3-step run: Lightning logged nothing, so the run wrote no
    curves.png and an empty log, silently. Now such a run logs its last step (every min(10, max_steps) steps)."""
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    over = ["trainer.log_every_n_steps=10", "trainer.max_steps=3", "checkpoint.every_n_steps=3"]
    assert main(["pretrain", "-c", str(cfg), *over]) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [0, 2] and rows[-1]["loss"] != ""  # step 0, then the last
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert f"curves: {tmp_path / 'run' / 'curves.png'}" in out
    export = tmp_path / "run" / "export" / "teacher.pth"  # the run says where its backbone is (it said nothing)
    assert f"geodino: backbone export: {export} (+ .safetensors, .heads.pth); use it as --backbone {export}" in out


def test_schedule_lengths_that_exceed_the_run_name_the_full_key_before_the_run_folder_is_made(tmp_path, tiny_data):
    """The shipped sat_vits16 recipe (lengths written for 125 000 iterations) runs short with its shape kept
    (it records ssl.schedules.reference_iters); a config without it is refused when it is loaded, naming the full
    key: the error said `schedules.lr` and suggested `schedules.reference_iters`, a key that does not exist."""
    from geodino.train.schedules import Schedules

    cfg = load_config(PretrainConfig, "configs/pretrain/sat_vits16.yaml", ["trainer.max_steps=1000"])
    s = Schedules.build(cfg.ssl, 1000, 64)
    # the 12 500-iteration warm-up at 1000 / 125 000 of its length: 100 iterations, the last one at the peak
    assert int(np.argmax(s.lr.values)) == 99 and s.lr.values[98] < s.lr.values[99]
    temp = s.teacher_temp.values
    assert int(np.argmax(temp >= 0.07 - 1e-9)) == 299  # 37 500 -> 300 iterations
    full = Schedules.build(load_config(PretrainConfig, "configs/pretrain/sat_vits16.yaml").ssl, 125000, 64)
    assert int(np.argmax(full.lr.values)) == 12499  # at its own length the recipe is the official one
    vitl = load_config(PretrainConfig, "configs/pretrain/vitl16.yaml", ["trainer.max_steps=1000"])
    vitl.output_dir = str(tmp_path / "vitl")
    with pytest.raises(ConfigError) as err:
        pretrain(vitl)
    assert not (tmp_path / "vitl").exists()
    said = str(err.value)
    assert said.startswith("ssl.schedules.lr: warmup_iters + freeze_iters + hold_iters = ")  # v1: no cosine length
    assert "set ssl.schedules.reference_iters to the run length" in said
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "never", tiny_data)
    short = load_config(PretrainConfig, cfg, ["trainer.max_steps=3", "ssl.optim.freeze_last_layer_iters=5"])
    with pytest.raises(ConfigError, match=r"^ssl\.optim\.freeze_last_layer_iters=5 exceeds the run's 3 iterations"):
        pretrain(short)
    assert not (tmp_path / "never").exists()


def test_cli_export_loads_strict(tiny_run, tmp_path, capsys):
    out = tmp_path / "vit.pth"
    assert main(["export", str(tiny_run / "checkpoints" / "last.ckpt"), str(out)]) == 0
    printed = capsys.readouterr().out.split()
    names = ["vit.safetensors", "vit.heads.pth", "vit.stac.json"]
    assert printed == [str(out), *(str(tmp_path / n) for n in names)]
    cfg = torch.load(tmp_path / "vit.heads.pth", weights_only=True)["backbone"]
    model = build_model(**cfg)
    model.load_state_dict(torch.load(out, weights_only=True), strict=True)
    assert (model.embed_dim, model.n_blocks, model.patch_size) == (192, 2, 8)
    # exporting twice refuses to overwrite
    assert main(["export", str(tiny_run / "checkpoints" / "last.ckpt"), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("geodino: error: "), err
    return err


def test_bad_config_key_names_close_match(tmp_path, tiny_data, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    assert main(["pretrain", "--config", str(cfg), "ssl.dino.head_n_prototype=8"]) == 2
    assert "unknown config key 'ssl.dino.head_n_prototype'" in _err(capsys)
    assert main(["pretrain", "--config", str(cfg), "trainer.strategy=fsdp3"]) == 2
    assert "trainer.strategy='fsdp3' is not one of" in _err(capsys)
    with pytest.raises(ConfigError, match=r"did you mean 'ssl.dino.head_n_prototypes'"):
        load_config(PretrainConfig, cfg, ["ssl.dino.head_n_prototype=8"])
    # clipping lives in ssl.optim (the key the step reads); a trainer.clip_grad key was accepted and did nothing
    with pytest.raises(ConfigError, match=r"unknown config key 'trainer.clip_grad'.*'ssl.optim.clip_grad'"):
        load_config(PretrainConfig, cfg, ["trainer.clip_grad=0.001"])
    assert main(["pretrain", "--config", str(cfg), "trainer.meta_init=true"]) == 2
    assert "trainer.meta_init=true needs trainer.strategy=fsdp2" in _err(capsys)
    from geodino.train.pretrain_build import build_arch

    meta = ["trainer.strategy=fsdp2", "trainer.meta_init=true"]
    with pytest.raises(ConfigError, match=r"cannot load ssl\.gram\.ckpt yet"):
        build_arch(load_config(PretrainConfig, cfg, [*meta, "ssl.gram.ckpt=teacher.pth"]))
    arch = build_arch(load_config(PretrainConfig, cfg, meta))  # no storage until FSDP2 has sharded it
    assert all(p.is_meta for p in arch.parameters())


def test_bands_not_fitting_the_model(tmp_path, tiny_data, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    assert main(["pretrain", "--config", str(cfg), "ssl.student.in_chans=4"]) == 2
    assert "the data has 3 bands per image but ssl.student.in_chans=4" in _err(capsys)


def test_output_folder_not_writable(tmp_path, tiny_data, capsys):
    (tmp_path / "afile").write_text("x")
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "afile" / "run", tiny_data)
    assert main(["pretrain", "--config", str(cfg)]) == 2
    assert f"cannot create output_dir {tmp_path / 'afile' / 'run'}" in _err(capsys)


def test_checkpoint_of_another_architecture(tmp_path, tiny_data, capsys):
    other = build_model("vit_tiny", patch_size=8, depth=2, embed_dim=96, num_heads=3)
    torch.save(other.state_dict(), tmp_path / "other.pth")
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    assert main(["pretrain", "--config", str(cfg), f"init_from={tmp_path / 'other.pth'}"]) == 2
    err = _err(capsys)
    assert f"checkpoint {tmp_path / 'other.pth'} does not fit the student backbone" in err and "shape mismatch" in err
    assert "ssl.student.arch" in err and "model.*" not in err  # keys that exist (issue 13)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing trained


def test_student_arch_from_init_builds_the_files_architecture(tmp_path, tiny_data, tiny_run, capsys):
    """`ssl.student.arch=from_init` takes the architecture from init_from: a plain state_dict of another width
    (the case above, refused without it) and an export with heads of other sizes train with no architecture keys;
    the run records the resolved architecture, and its student starts from the file's weights."""
    from geodino.models.checkpoints import infer_config, read_backbone_weights

    other = build_model("vit_tiny", patch_size=8, depth=2, embed_dim=96, num_heads=3, n_storage_tokens=0)
    torch.save(other.state_dict(), tmp_path / "other.pth")
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    over = ["ssl.student.arch=from_init", f"init_from={tmp_path / 'other.pth'}", "trainer.max_steps=1"]
    assert main(["pretrain", "--config", str(cfg), *over, "checkpoint.every_n_steps=1"]) == 0
    said = capsys.readouterr().err  # a file that records no arch: built on vit_small with its own shapes
    assert "ssl.student.arch=from_init: a vit_small base, patch 8, 3 bands, depth 2, width 96" in said
    assert "ssl.student.arch=from_init replaces depth=2 (the file's: 2)" not in said
    saved = load_config(PretrainConfig, tmp_path / "run" / "config.yaml")
    assert saved.ssl.student.arch == "vit_small" and saved.ssl.student.overrides["embed_dim"] == 96
    exported = read_backbone_weights(tmp_path / "run" / "export" / "teacher.pth").state
    structure = ("embed_dim", "depth", "num_heads", "n_storage_tokens", "ffn_hidden_dim", "patch_size")
    assert {k: infer_config(exported)[k] for k in structure} == {
        k: infer_config(other.state_dict())[k] for k in structure
    }

    # an export with heads (64 prototypes, bottleneck 16, hidden 32) into a config of other head sizes
    export = tiny_run / "export" / "teacher.pth"
    heads = "{head_n_prototypes: 128, head_hidden_dim: 48, head_bottleneck_dim: 24}"
    over = ["ssl.student.arch=from_init", f"init_from={export}", f"ssl.dino={heads}", f"ssl.ibot={heads}"]
    over += ["ssl.student.overrides={depth: 5}", "trainer.max_steps=1", f"output_dir={tmp_path / 'run2'}"]
    assert main(["pretrain", "--config", str(cfg), *over]) == 0  # the file's depth (2) wins over the config's 5
    assert "geodino: ssl.student.arch=from_init replaces depth=5 (the file's: 2)" in capsys.readouterr().err
    saved = load_config(PretrainConfig, tmp_path / "run2" / "config.yaml")
    assert saved.ssl.student.overrides["depth"] == 2 and saved.ssl.student.arch == "vit_tiny"
    assert (saved.ssl.dino.head_n_prototypes, saved.ssl.dino.head_hidden_dim, saved.ssl.ibot.head_bottleneck_dim) == (
        64,
        32,
        16,
    )
    # a file without LayerScale into a recipe that sets layerscale_init (small_vit_tiny's 1.0): the file decides
    plain = build_model("vit_tiny", patch_size=8, depth=1, layerscale_init=None)
    torch.save(plain.state_dict(), tmp_path / "plain.pth")
    over = ["ssl.student.arch=from_init", f"init_from={tmp_path / 'plain.pth'}", "trainer.max_steps=1"]
    over += ["ssl.student.overrides={layerscale_init: 1.0}", f"output_dir={tmp_path / 'run3'}"]
    assert main(["pretrain", "--config", str(cfg), *over]) == 0, capsys.readouterr().err
    assert (
        load_config(PretrainConfig, tmp_path / "run3" / "config.yaml").ssl.student.overrides["layerscale_init"] is None
    )
    with pytest.raises(ConfigError, match=r"^ssl\.student\.arch=from_init needs init_from"):
        pretrain(load_config(PretrainConfig, cfg, ["ssl.student.arch=from_init"]))


def test_missing_init_from(tmp_path, tiny_data, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    assert main(["pretrain", "--config", str(cfg), f"init_from={tmp_path / 'nope.ckpt'}"]) == 2
    assert f"init_from file {tmp_path / 'nope.ckpt'} not found" in _err(capsys)


def test_resume_with_another_architecture(tmp_path, tiny_data, tiny_run):
    cfg = load_config(
        PretrainConfig,
        write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data),
        [f"checkpoint.resume={tiny_run / 'checkpoints' / 'last.ckpt'}", "ssl.student.overrides.depth=3"],
    )
    with pytest.raises(CheckpointError, match=r"was trained with depth=2 but this config builds depth=3"):
        pretrain(cfg)


def test_resume_never_refuses_a_used_folder(tmp_path, tiny_data, tiny_run):
    path = write_config(tmp_path / "c.yaml", tiny_run, tiny_data)
    cfg = load_config(PretrainConfig, path, ["checkpoint.resume=never"])
    with pytest.raises(InputError, match=r"already holds checkpoints \(step_00000002.ckpt\)"):
        pretrain(cfg)


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "pretrain").glob("*.yaml"))


def test_every_pretrain_config_loads_and_stages_chain():
    names = {p.stem for p in CONFIGS}
    assert {"demo", "sat_vits16", "s2_vits16", "web_vits16", "vitl16", "vit7b16"} <= names
    for size in ("vits16", "vitl16", "vit7b16"):
        cfgs = {
            s: load_config(PretrainConfig, CONFIGS[0].parent / f"{size}_{s}.yaml")
            for s in ("pretrain", "gram", "highres")
        }
        assert cfgs["pretrain"].init_from is None and not cfgs["pretrain"].ssl.gram.use_loss
        # each stage starts from the previous stage's last checkpoint
        assert cfgs["gram"].init_from == f"{cfgs['pretrain'].output_dir}/checkpoints/last.ckpt"
        assert cfgs["highres"].init_from == f"{cfgs['gram'].output_dir}/checkpoints/last.ckpt"
        assert (cfgs["gram"].init_student_from, cfgs["highres"].init_student_from) == ("student", "teacher")
        g, h = cfgs["gram"], cfgs["highres"]
        assert g.ssl.gram.use_loss and g.ssl.gram.rep_update and g.crops.gram
        assert h.ssl.gram.loss_weight == 1.5 and not h.ssl.gram.rep_update and h.ssl.koleo.distributed
        assert sum(c.probability for c in h.crops.crop_sets) == pytest.approx(1.0) and len(h.crops.crop_sets) == 5
    for p in CONFIGS:
        load_config(PretrainConfig, p)


def test_official_7b_values_and_meta_build():
    from geodino.train.ssl import SSLMetaArch

    cfg = load_config(PretrainConfig, CONFIGS[0].parent / "vit7b16_gram.yaml")
    s = cfg.ssl
    assert (s.student.arch, s.student.drop_path_rate, s.optim.clip_grad, s.optim.layerwise_decay) == (
        "vit_7b",
        0.4,
        30.0,
        0.98,
    )
    assert (s.optim.adamw_beta2, s.dino.head_n_prototypes, s.ibot.head_n_prototypes) == (0.99, 262144, 98304)
    assert (s.gram.loss_weight, s.gram.update_frequency, s.gram.max_updates, s.gram.img_level) == (2.0, 10000, 3, True)
    assert (s.schedules.lr.peak, s.schedules.momentum.peak, cfg.trainer.max_steps) == (3e-5, 0.999, 200000)
    assert cfg.batch_size * cfg.trainer.devices * cfg.trainer.num_nodes == 4096
    assert cfg.trainer.meta_init and cfg.trainer.strategy == "fsdp2"  # 7B: shards are initialised in place
    assert cfg.trainer.activation_checkpointing == "full"  # official gram_anchor: checkpointing_full: true
    with torch.device("meta"):  # a config that names a 7B model builds a 7B model
        arch = SSLMetaArch(s)
    n = sum(p.numel() for p in arch.student["backbone"].parameters())
    assert 6.7e9 < n < 6.8e9 and arch.gram_teacher is not None


def test_distill_command_is_registered(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["distill", "--help"])
    assert exc.value.code == 0 and "distill" in capsys.readouterr().out


def test_small_recipe_switches_and_official_defaults_untouched():
    """The small-budget recipe sets its switches (docs/recipe.md); every official config keeps official behaviour."""
    small = load_config(PretrainConfig, CONFIGS[0].parent / "small_vit_tiny.yaml")
    demo = load_config(PretrainConfig, CONFIGS[0].parent / "demo.yaml")
    for cfg in (small, demo):
        s = cfg.ssl
        assert s.student.overrides["layerscale_init"] == 1.0
        assert s.student.overrides["n_storage_tokens"] == 0  # no registers: a local crop has 9 patch tokens
        assert (s.dino.head_last_layer, s.ibot.head_last_layer) == ("normalized", "normalized")
        t = s.schedules.teacher_temp
        assert (t.start, t.peak, t.end) == (0.04, 0.04, 0.04)
        assert isinstance(s.schedules.lr.warmup_iters, float)  # a fraction of the run
        sc = s.schedules  # flat after the warm-up: nothing anneals in a short run
        assert (sc.lr.end, sc.weight_decay.end, sc.momentum.end) == (sc.lr.peak, sc.weight_decay.peak, 0.99)
        assert sc.lr.peak == 5.0e-4  # chosen by the 10-minute benchmark (docs/recipe.md, "Half the peak lr")
        assert cfg.crops.grayscale_prob == 0.0 and cfg.crops.solarize_prob == 0.0
        assert (s.dino.centering, s.ibot.centering) == ("sinkhorn_knopp", "sinkhorn_knopp")  # the DINOv3 objective
    official = [p for p in CONFIGS if not p.stem.startswith(("small_", "demo"))]
    assert len(official) >= 10
    for p in official:
        cfg = load_config(PretrainConfig, p)
        assert (cfg.ssl.dino.head_last_layer, cfg.ssl.ibot.head_last_layer) == ("linear", "linear"), p.name
        assert cfg.ssl.student.overrides.get("layerscale_init", 1e-5) == 1e-5, p.name
        sc = cfg.ssl.schedules
        if sc.kind == "v1":  # the official cosine schedules (v2 configs give lr/momentum their own way)
            assert sc.momentum.end == 1.0 and sc.lr.end < sc.lr.peak, p.name


def test_head_warmup_steps_as_a_fraction(tmp_path, tiny_data):
    cfg = load_config(PretrainConfig, write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data))
    cfg.trainer.max_steps = 50
    cfg.head_warmup_steps = 0.1
    cfg.validate()
    from geodino.train.schedules import resolve_iters

    assert resolve_iters(cfg.head_warmup_steps, 50, "head_warmup_steps") == 5
    for bad in (1.5, 50, -1):
        cfg.head_warmup_steps = bad
        with pytest.raises(ConfigError, match="head_warmup_steps"):
            cfg.validate()


@pytest.mark.slow
def test_ddp_spawn_runs_through_pretrain(tmp_path, tiny_data):
    """`trainer.strategy=ddp_spawn` pickles the module into each process: everything `pretrain` hands it (the
    checkpoint metadata among it) must be picklable. Two CPU processes, two steps, from the CLI."""
    import os
    import subprocess
    import sys

    cfg = write_config(tmp_path / "tiny.yaml", tmp_path / "run", tiny_data)
    args = ["trainer.strategy=ddp_spawn", "trainer.devices=2", "checkpoint.every_n_steps=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    p = subprocess.run(
        [sys.executable, "-m", "geodino.cli", "pretrain", "-c", str(cfg), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    assert ckpt["geodino"]["data"] == {"seed": 0, "next_step": 2, "global_batch_size": 8, "samples_seen": 16}
    assert (tmp_path / "run" / "export" / "teacher.pth").is_file()


def test_koleo_groups_that_do_not_tile_the_batch_stop_before_anything_is_written(tmp_path, tiny_data, capsys):
    """The high-res stage's KoLeo groups of 16 on a batch of 2 (one process) failed with a traceback after start-up,
    leaving a run folder; now one line names the keys and nothing is written."""
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    args = ["pretrain", "--config", str(cfg), "ssl.koleo.distributed=true", "ssl.koleo.group_size=16", "batch_size=2"]
    assert main(args) == 2
    err = _err(capsys)
    assert "ssl.koleo.group_size=16 does not tile batches of batch_size=2 on 1 process (global batch 2)" in err
    assert not (tmp_path / "run").exists()
    # a group size without the distributed KoLeo was ignored silently (the run trained on per-batch KoLeo)
    assert main(["pretrain", "--config", str(cfg), "ssl.koleo.group_size=16"]) == 2
    err = _err(capsys)
    assert "ssl.koleo.group_size=16 needs ssl.koleo.distributed=true" in err and "would be ignored" in err
    assert not (tmp_path / "run").exists()


def test_a_run_folder_in_use_is_refused_and_a_killed_runs_temporaries_are_swept(tmp_path, tiny_data):
    """Two pretrains into one output_dir mixed their checkpoints and logs; a checkpoint temporary left by a kill
    stayed forever (keep_last never pruned it)."""
    import fcntl

    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig
    from geodino.train.pretrain_folder import prepare_output
    from geodino.train.run_start import Start

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    stale = out / "checkpoints" / ".step_00000005.tmp-4242.ckpt"
    stale.write_bytes(b"half a checkpoint")
    cfg = load_config(PretrainConfig, write_config(tmp_path / "c.yaml", out, tiny_data))
    with open(out / ".geodino.lock", "w") as other:  # another run holds the folder
        other.write("pid 4242")
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match=r"output_dir .*run is in use by another run \(pid 4242\); wait for it"):
            prepare_output(cfg, Start())
        assert stale.exists()  # nothing of the other run's is touched
    start = Start()
    prepare_output(cfg, start)  # the other run ended (its lock is gone): this one takes the folder
    assert stale.exists()  # swept only once the start is accepted
    start.settle()
    assert not stale.exists()


def test_ctrl_c_during_pretraining_is_exit_130_and_leaves_ctrl_c_working(tmp_path, tiny_data, capsys, monkeypatch):
    """Lightning caught the KeyboardInterrupt, exited 1 and left SIGINT ignored for the rest of the process."""
    import signal

    import lightning as L

    class CtrlC(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            raise KeyboardInterrupt

    from tests.train.conftest import add_trainer_callback

    add_trainer_callback(monkeypatch, CtrlC())
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    assert main(["pretrain", "--config", str(cfg)]) == 130
    assert capsys.readouterr().err.strip().endswith("geodino: interrupted")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_truncated_newest_checkpoint_says_to_delete_it(tmp_path, tiny_data, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "step_00000004.ckpt").write_bytes(b"PK\x03\x04 truncated")
    assert main(["pretrain", "--config", str(cfg)]) == 2
    err = _err(capsys)
    assert "the newest checkpoint of" in err and "step_00000004.ckpt, is corrupt or truncated; delete it" in err


@pytest.mark.parametrize(
    ("override", "said"),
    [
        (
            "trainer.accelerator=gpux",
            "trainer.accelerator='gpux' is not one of auto, cpu, gpu, cuda, mps (did you mean gpu?)",
        ),
        ("trainer.accelerator=tpu", "trainer.accelerator='tpu' is not one of auto, cpu, gpu, cuda, mps (TPUs need"),
        ("trainer.accelerator=mps", "trainer.accelerator=mps but no Apple GPU (MPS) is available; use trainer.accel"),
        ("trainer.devices=0", "trainer.devices=0 must be -1 (every visible GPU) or a whole number >= 1"),
        ("trainer.devices=-3", "trainer.devices=-3 must be -1 (every visible GPU) or a whole number >= 1"),
        ("trainer.num_nodes=0", "trainer.num_nodes=0 must be a whole number >= 1"),
        ("seed=-1", "seed=-1 must be a whole number from 0 to 4294967295"),  # numpy's ValueError
        # torch only warned and ran at "highest"; the dtype was read at the FSDP2 set-up, after the folder was made
        ("trainer.float32_matmul_precision=hi", "trainer.float32_matmul_precision='hi' is not one of highest, high"),
        ("trainer.fsdp_param_dtype=float8", "trainer.fsdp_param_dtype='float8' is not one of bfloat16, float16, f"),
    ],
)
def test_trainer_settings_lightning_refused_with_a_traceback_are_one_line(override, said, tmp_path, tiny_data, capsys):
    """Lightning raised these (ValueError, MisconfigurationException, TypeError, torch_xla's ModuleNotFoundError),
    numpy the seed's, with a traceback, exit code 1, after the run folder was made; now one line, exit 2, no
    folder."""
    import torch

    if "mps" in override and torch.backends.mps.is_available():  # never on Linux (CI); patching it breaks dynamo
        pytest.skip("an Apple GPU is available here")
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    assert main(["pretrain", "--config", str(cfg), override]) == 2
    assert _err(capsys).startswith(f"geodino: error: {said}")
    assert not (tmp_path / "run").exists()


def test_from_init_of_another_patch_size_checks_the_crops_against_the_files(tmp_path, tiny_data, capsys):
    """The crops were checked only against the config's patch size (8): a patch-32 file with 16 px local crops built
    a model whose first step failed, after the run folder was made (found by the README walkthrough)."""
    p32 = build_model("vit_tiny", patch_size=32, depth=1, n_storage_tokens=0)
    torch.save(p32.state_dict(), tmp_path / "p32.pth")
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    over = ["ssl.student.arch=from_init", f"init_from={tmp_path / 'p32.pth'}", "trainer.max_steps=1"]
    assert main(["pretrain", "--config", str(cfg), *over]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("geodino: error:")]
    assert err == [
        "geodino: error: crops.local_size=16 is smaller than one patch (ssl.student.patch_size=32); use a multiple "
        "of 32 (official: global 224, local 96 at patch 16)"
    ], err
    assert not (tmp_path / "run").exists()
