"""Running a finished run's command again (`checkpoint.resume=auto` finds the checkpoint at max_steps) trains
nothing, and said only 'resuming from ... at step 2 of 2', as if it trained on. It now says the run is complete;
a run stopped early says nothing of the kind."""

from __future__ import annotations

from geodino.config import load_config
from geodino.train.pretrain import PretrainConfig, pretrain
from tests.train.conftest import write_config


def test_rerun_of_a_finished_run_says_it_is_complete(tmp_path, tiny_data, capsys) -> None:
    path = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    pretrain(load_config(PretrainConfig, path, ["checkpoint.export_at_end=false"]))
    assert "already complete" not in capsys.readouterr().err
    pretrain(load_config(PretrainConfig, path, ["checkpoint.export_at_end=false"]))
    newest = tmp_path / "run" / "checkpoints" / "step_00000002.ckpt"
    line = f"geodino: resuming from {newest} at step 2 of 2: the run is already complete, nothing to train\n"
    assert line in capsys.readouterr().err
