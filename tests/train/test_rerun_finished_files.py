"""Re-running a finished pretraining run (the same command after it completed) trains nothing, yet it rewrote
config.yaml (with whatever resumable keys the re-run changed: it then misstated what ran), data_paths.json,
schedules.png and the whole export (its STAC item with a new timestamp). The re-run now leaves them as they are,
byte for byte and unwritten; an export that is missing, or not of the final checkpoint, is written as before."""

from __future__ import annotations

import json
from pathlib import Path

from geodino.config import load_config
from geodino.train.pretrain import PretrainConfig, pretrain
from tests.train.conftest import write_config

FILES = ("config.yaml", "data_paths.json", "schedules.png", "export/teacher.pth", "export/teacher.safetensors",
         "export/teacher.heads.pth", "export/teacher.stac.json")  # fmt: skip


def _state(run: Path) -> dict[str, tuple[bytes, int]]:
    return {f: ((run / f).read_bytes(), (run / f).stat().st_mtime_ns) for f in FILES}


def test_rerun_of_a_finished_run_leaves_its_files(tmp_path, tiny_data) -> None:
    path = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    run = pretrain(load_config(PretrainConfig, path))
    first = _state(run)
    # a key a resume may change (logging): the re-run trains nothing, so config.yaml keeps what ran
    pretrain(load_config(PretrainConfig, path, ["trainer.log_every_n_steps=2"]))
    assert _state(run) == first
    # an export gone, or one of another step, is written again
    (run / "export" / "teacher.safetensors").unlink()
    pretrain(load_config(PretrainConfig, path))
    assert (run / "export" / "teacher.safetensors").read_bytes() == first["export/teacher.safetensors"][0]
    item = run / "export" / "teacher.stac.json"
    doc = json.loads(item.read_text())
    doc["properties"]["geodino:step"] = 1
    item.write_text(json.dumps(doc))
    pretrain(load_config(PretrainConfig, path))
    assert json.loads(item.read_text())["properties"]["geodino:step"] == 2
    assert (run / "export" / "teacher.pth").read_bytes() == first["export/teacher.pth"][0]
    assert (run / "config.yaml").read_bytes() == first["config.yaml"][0]


def test_a_finished_run_folder_without_config_gets_it_back(tmp_path) -> None:
    """The re-run of a finished run writes no start file, unless config.yaml is gone (then all are written)."""
    from types import SimpleNamespace

    from geodino.train.pretrain_start import write_start_files
    from geodino.train.run_start import Start

    (tmp_path / "data").mkdir()
    cfg = load_config(PretrainConfig, write_config(tmp_path / "c.yaml", tmp_path / "run", tmp_path / "data"))
    out = tmp_path / "run"
    out.mkdir()
    plotted: list[Path] = []
    arch = SimpleNamespace(schedules=SimpleNamespace(plot=plotted.append))
    resume = out / "checkpoints" / "step_00000002.ckpt"
    write_start_files(cfg, out, arch, Start(), resume, 2)
    assert (out / "config.yaml").is_file() and (out / "data_paths.json").is_file() and plotted
    (out / "config.yaml").write_text("what ran\n")
    write_start_files(cfg, out, arch, Start(), resume, 2)
    assert (out / "config.yaml").read_text() == "what ran\n" and len(plotted) == 1
    write_start_files(cfg, out, arch, Start(), resume, 1)  # not finished: a resume writes them
    assert (out / "config.yaml").read_text() != "what ran\n" and len(plotted) == 2


def test_rerun_of_a_finished_run_starts_no_logger_run(tmp_path, tiny_data) -> None:
    """Each logger started a run of its own on the re-run (a new, empty TensorBoard events file; with W&B or MLflow a
    new run in the tracker) although nothing trains; metrics.csv and the events of the run are kept as they are."""
    path = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    loggers = ["trainer.loggers=[csv, tensorboard]"]
    run = pretrain(load_config(PretrainConfig, path, loggers))

    def files() -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in [*sorted((run / "tensorboard").rglob("*")), run / "logs" / "metrics.csv"]}

    before = files()
    assert any(p.name.startswith("events.out.tfevents") for p in before)
    pretrain(load_config(PretrainConfig, path, loggers))
    assert files() == before
