"""How much of each student's initial weights its exported EMA still holds at the end of a run.

The EMA is `ema <- m·ema + (1-m)·student` from a copy of the initial student, so after T steps it holds the
product of the T momenta of those initial weights (random, or `init_from`'s). The official schedule (0.994 -> 1,
cosine over the run) is made for runs of tens of thousands of steps; over T steps it keeps about
exp(-0.003·T): 94 % after 20 steps, 41 % after 300, 5 % after 1000. A short run's export (`train.export=ema`, the
default) was then largely the init without a word; a run whose EMA keeps more than a tenth of it now says so at its
start, with the ways out (the default 1000-step run, 5 %, is not warned).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EMA_SHARE_WARN", "ema_init_share", "short_ema_warning"]

# warned above this (a tenth of the export is the init); 1 - 10/T as the start and peak momentum (the heads
# warm-up's rule, teacher_heads.warmup_momentum_start) keeps under 1 % for every T
EMA_SHARE_WARN = 0.1
EMA_CONSTANT = 10.0


def ema_init_share(momentum: Any, steps: int) -> float:
    """The share of its initial weights an EMA keeps after `steps` updates with `momentum[0..steps-1]`."""
    return float(np.prod([momentum[i] for i in range(int(steps))])) if steps > 0 else 1.0


def short_ema_warning(cfg: Any, sched: Any) -> str | None:
    """The warning for a run whose exported EMA (`train.export=ema`) keeps more than `EMA_SHARE_WARN` of the
    students' initial weights (one line naming the share, the schedule and what to change); None otherwise."""
    steps = int(cfg.train.max_steps)
    if cfg.train.export != "ema" or steps < 1:
        return None
    share = ema_init_share(sched.momentum, steps)
    if share <= EMA_SHARE_WARN:
        return None
    m = max(0.0, 1.0 - EMA_CONSTANT / steps)
    first, last = sched.momentum[0], sched.momentum[steps - 1]
    return (
        f"the students' EMA keeps {share:.1%} of their initial weights after {steps} steps (schedules.momentum "
        f"{first:.4g} -> {last:.4g}), so that much of the export (train.export=ema) is the init, not what they "
        f"learned; for a run this short lower the momentum (schedules.momentum={{start: {m:.4g}, peak: {m:.4g}, "
        "end: 1.0}, i.e. 1 - 10/steps, keeps under 1%), train longer, or export the raw students "
        "(train.export=student)"
    )
