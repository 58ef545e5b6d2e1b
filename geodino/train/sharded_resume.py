"""Resuming a sharded FSDP2 checkpoint folder (`checkpoint.sharded=true`) under another strategy (auto, ddp).

Under `trainer.strategy=fsdp2` Lightning reads the folder itself (DCP, any world size). Every other strategy opens
the checkpoint path as one file, so a folder stopped the run with a raw `IsADirectoryError`. Here the folder is
gathered into one full checkpoint in memory (`geodino.models.checkpoints.files.load_file`, the gather export and
init_from use) and handed to Lightning in the layout a one-process run writes: the weights as `state_dict`, and the
optimizer state, which DCP keys by parameter name (`optimizer_0`), as `optimizer_states` keyed by integer ids in
param-group order (what `torch.optim.Optimizer.load_state_dict` matches through the groups' `params` lists). The
gather costs one full copy of the model and optimizer per process, as resuming from a gathered file does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

__all__ = ["FolderReadingIO", "gathered_checkpoint", "plain_optimizer_state", "read_sharded_folders"]


def plain_optimizer_state(named: dict[str, Any]) -> dict[str, Any]:
    """DCP's optimizer state (`state` and each group's `params` keyed by parameter name) as a plain optimizer's
    (integer ids numbered through the param groups in order). A state already keyed by ids is returned as is."""
    groups = named.get("param_groups", [])
    if all(isinstance(n, int) for g in groups for n in g.get("params", [])):
        return named
    ids: dict[str, int] = {}
    for g in groups:
        for name in g["params"]:
            ids.setdefault(name, len(ids))
    state = named.get("state", {})
    unknown = sorted(set(state) - set(ids))
    if unknown:
        from geodino.errors import CheckpointError

        raise CheckpointError(
            f"the optimizer state of the sharded checkpoint names parameters that no param group holds "
            f"({', '.join(map(str, unknown[:3]))}); resume it with trainer.strategy=fsdp2"
        )
    return {
        "state": {ids[n]: v for n, v in state.items()},
        "param_groups": [{**g, "params": [ids[n] for n in g["params"]]} for g in groups],
    }


def gathered_checkpoint(folder: str | Path) -> dict[str, Any]:
    """A sharded checkpoint folder as the dict Lightning restores a one-process run from."""
    from geodino.models.checkpoints.files import load_file

    full = load_file(folder)
    n = 0
    optimizers = []
    while f"optimizer_{n}" in full:
        optimizers.append(plain_optimizer_state(full.pop(f"optimizer_{n}")))
        n += 1
    if optimizers and "optimizer_states" not in full:
        full["optimizer_states"] = optimizers
    return full


class FolderReadingIO(TorchCheckpointIO):
    """Lightning's checkpoint reader, which also reads a sharded checkpoint folder (`gathered_checkpoint`). A class
    at module level, not a patched method: `ddp_spawn` pickles the trainer, its strategy and this reader."""

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if Path(path).is_dir():
            return gathered_checkpoint(path)
        return super().load_checkpoint(path, *args, **kwargs)


def read_sharded_folders(trainer: Any) -> None:
    """Let `trainer` (any strategy but FSDP2's, whose own reader takes folders) resume from a sharded checkpoint
    folder: its plain checkpoint reader becomes a `FolderReadingIO` (a custom one is left alone)."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = FolderReadingIO()
