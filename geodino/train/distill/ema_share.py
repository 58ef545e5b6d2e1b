"""How much of each student's initial weights its exported EMA still holds at the end of a run.

The EMA is `ema <- m·ema + (1-m)·student` from a copy of the initial student, so after T steps it holds the
product of the T momenta of those initial weights (random, or `init_from`'s). The official schedule (0.994 -> 1,
cosine over the run) is made for runs of tens of thousands of steps; over T steps it keeps about
exp(-0.003·T): 94 % after 20 steps, 41 % after 300, 5 % after 1000. A short run's export (`train.export=ema`, the
default) was then mostly the init without a word; the run now says so at its start, with the ways out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EMA_SHARE_WARN", "ema_init_share", "short_ema_warning"]

# warned above this; 1 - 10/T as the start and peak momentum (the heads warm-up's rule) keeps less for every T
EMA_SHARE_WARN = 0.01
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
        f"{first:.4g} -> {last:.4g}), so the export (train.export=ema) is mostly the init, not what they learned; "
        f"for a run this short lower the momentum (schedules.momentum={{start: {m:.4g}, peak: {m:.4g}, end: 1.0}}, "
        f"i.e. 1 - 10/steps, keeps under {EMA_SHARE_WARN:.0%}), train longer, or export the raw students "
        "(train.export=student)"
    )
