"""The closing line of a pretraining run (`describe_loss` of `loss_summary`): what the logged DINO loss did against
ln K, said without overstating: one logged step is one point, a dip that did not last is not "below from"."""

from __future__ import annotations

import math

import pytest

from geodino.train.curves import describe_loss, loss_summary

LN_K = math.log(1024)  # 6.931


def _run(tmp_path, losses: dict[int, float]):
    logs = tmp_path / "logs" / "csv"
    logs.mkdir(parents=True)
    rows = ["step,dino_global_loss,monitor/max_entropy", *(f"{s},{v},{LN_K}" for s, v in losses.items())]
    (logs / "metrics.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_one_logged_step_is_said_as_one_point(tmp_path):
    loss = loss_summary(_run(tmp_path, {9: 6.622}))
    assert loss["n_logged"] == 1 and loss["first_step"] == 9 and loss["first"] == loss["end"] == 6.622
    line = describe_loss(loss)
    assert line.startswith("6.622 at step 9, the only logged step (ln K = 6.931; 0.1 below;"), line
    assert "->" not in line and "trainer.log_every_n_steps" in line


@pytest.mark.parametrize(
    ("losses", "said"),
    [
        # 20 logged steps, below ln K - 0.1 from step 40 on: the end (mean of the last 2) is below too
        ({10 * i: (6.93 if i < 4 else 6.5) for i in range(20)}, "(ln K = 6.931; 0.1 below from step 40)"),
        # one dip at step 30, back at ln K for the rest of the run
        ({10 * i: (6.7 if i == 3 else 6.93) for i in range(20)}, "first 0.1 below at step 30, above again by the end"),
        ({10 * i: 6.93 for i in range(20)}, "(ln K = 6.931; never 0.1 below)"),
    ],
)
def test_a_dip_that_did_not_last_is_not_below_from(tmp_path, losses, said):
    line = describe_loss(loss_summary(_run(tmp_path, losses)))
    assert said in line and line.startswith(f"{losses[0]:.3f} at the start -> "), line


def test_a_first_logged_step_after_0_is_not_called_the_start(tmp_path):
    """Lightning logs step N-1 first (N = trainer.log_every_n_steps; 9 by default): a run's closing line said that
    value was the loss 'at the start', which a reader compares with ln K as the untrained loss."""
    line = describe_loss(loss_summary(_run(tmp_path, {9: 6.805, 19: 6.791, 29: 6.757})))
    assert line.startswith("6.805 at step 9 (the first logged) -> 6.757 at the end (ln K = 6.931;"), line
    assert "at the start" not in line
