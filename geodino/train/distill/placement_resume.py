"""Loading distillation checkpoints written with the other placement of the students, by parameter name.

Co-located students (one process, or no `students.ranks`/`share`) keep one `checkpoints/step_N.ckpt` holding every
student, every EMA and one AdamW over all of them; students on their own ranks keep `<student>/checkpoints/
step_N.ckpt`, each with that student alone and an AdamW over its parameters only. The optimizer's integer parameter
ids differ between the two (each file numbers its own groups from 0), but every saved param group carries a `names`
list (`tiny.backbone.cls_token`, ...), so the state is remapped by name: `optimizer_state_by_name` builds the state
dict of the optimizer at hand from one or several saved ones, and `load_by_name` loads a run's students, EMAs and
optimizer from the checkpoints of either placement (one co-located file, or one file per student).

Not wired into the run yet: `run_folder.refuse_other_layout` still refuses a relaunch with the other placement
(the run folder's files, log.csv included, are not carried across yet).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from geodino.errors import CheckpointError

__all__ = ["load_by_name", "optimizer_state_by_name"]


def optimizer_state_by_name(saved: list[dict[str, Any]], opt: torch.optim.Optimizer) -> dict[str, Any]:
    """`opt`'s state dict filled from the optimizer state dicts `saved` (any placement), matched by parameter name:
    each of `opt`'s groups takes its options (betas, lr, multipliers...) from the saved group of the same names, and
    each parameter its moments and step. Refused in one line when a name is missing, found twice, or the saved group
    lists other names (another recipe's grouping), since such a state would give moments to other parameters."""
    by_name: dict[str, tuple[Any, dict[str, Any]]] = {}
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for sd in saved:
        for g in sd["param_groups"]:
            if "names" not in g or len(g["names"]) != len(g["params"]):
                raise CheckpointError("a saved optimizer group has no parameter names: it cannot be remapped")
            key = tuple(g["names"])
            groups[key] = {k: v for k, v in g.items() if k != "params"}
            for pid, name in zip(g["params"], g["names"], strict=True):
                if name in by_name:
                    raise CheckpointError(f"parameter {name!r} is in two saved optimizer states")
                by_name[name] = (sd["state"].get(pid), groups[key])
    target = opt.state_dict()
    state: dict[int, Any] = {}
    param_groups = []
    for g in target["param_groups"]:
        key = tuple(g["names"])
        if key not in groups:
            missing = [n for n in key if n not in by_name]
            what = f"has no state of {missing[0]!r}" if missing else f"groups {key[0]!r} with other parameters"
            raise CheckpointError(f"the saved optimizer {what}; resume with the recipe that wrote it")
        param_groups.append({**groups[key], "params": list(g["params"])})
        for pid, name in zip(g["params"], key, strict=True):
            if by_name[name][0] is not None:
                state[pid] = by_name[name][0]
    return {"state": state, "param_groups": param_groups}


def load_by_name(objs: list[dict[str, Any]], arch: nn.Module, opt: torch.optim.Optimizer, where: Path) -> int:
    """Load `arch`'s students and EMAs and `opt` from checkpoint dicts of either placement (`objs`: one co-located
    checkpoint, or one per student; students of `objs` that `arch` does not train are skipped); the step they share
    is returned. `where` names the folder in errors."""
    from geodino.models.checkpoints import load_strict
    from geodino.train.checkpointing import DISTILL_FIT_HINT

    steps = {int(o["step"]) for o in objs}
    if len(steps) != 1:
        raise CheckpointError(f"the checkpoints of {where} are of different steps {sorted(steps)}")
    for name, module in arch.students.items():
        have = [o for o in objs if name in o["students"]]
        if len(have) != 1:
            raise CheckpointError(f"{len(have)} checkpoints of {where} hold student {name!r}; one is needed")
        load_strict(module, have[0]["students"][name], f"student {name}", str(where), DISTILL_FIT_HINT)
        ema_state = have[0]["students_ema"][name]
        load_strict(arch.students_ema[name], ema_state, f"student {name} EMA", str(where), DISTILL_FIT_HINT)
    opt.load_state_dict(optimizer_state_by_name([o["optimizer"] for o in objs], opt))
    return steps.pop()
