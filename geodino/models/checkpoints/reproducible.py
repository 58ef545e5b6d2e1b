"""Byte-reproducible weight files: the same tensors and metadata give the same bytes in every process, so an export
can be checksummed, cached (DVC, content-addressed stores) and compared with `cmp`.

Two library behaviours break that, and are worked around here:
- `torch.save(obj, path)` names the zip's root folder after the file, and geodino writes every file under a
  temporary name with the process id (`geodino.io.atomic_path`); saving through an open file handle gives the fixed
  root `archive/` instead (what `torch.save` uses for any stream).
- safetensors serialises the `__metadata__` map in Rust hash order, which changes from process to process. The
  header is rewritten with the metadata keys sorted; everything else (tensor entries, offsets, data) is untouched,
  and the header keeps its length (padded with spaces, as the format allows), so the data offsets stay valid.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_safetensors_file", "save_torch"]


def save_torch(obj: Any, path: str | Path) -> None:
    """`torch.save` whose bytes do not depend on the file's (temporary) name."""
    with open(path, "wb") as fh:
        torch.save(obj, fh)


def save_safetensors_file(
    tensors: Mapping[str, torch.Tensor], path: str | Path, metadata: Mapping[str, str] | None = None
) -> None:
    """`safetensors.torch.save_file` with the metadata in sorted key order."""
    from safetensors.torch import save_file

    save_file(dict(tensors), str(path), metadata=dict(metadata) if metadata else None)
    sort_safetensors_metadata(path)


def sort_safetensors_metadata(path: str | Path) -> None:
    """Rewrite a .safetensors header in place with its `__metadata__` keys sorted (same length: nothing moves)."""
    with open(path, "r+b") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        raw = fh.read(n)
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=dict)
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or len(meta) < 2:
            return
        header["__metadata__"] = dict(sorted(meta.items()))
        new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(new) > n:  # another escaping than the writer's would not fit: leave the file as it is (still valid)
            return
        fh.seek(8)
        fh.write(new + b" " * (n - len(new)))
