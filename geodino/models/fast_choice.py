"""Which inference path runs for a frozen DinoVisionTransformer: the modes, the `GEODINO_FAST` switch and `choose_path`.

`choose_path(device, mode=..., compile=..., amp=...)` returns a `FastPath` (weight dtype, compiled or not, 3xTF32
projections), disabled when the fast path is off: `mode="off"` or the environment variable `GEODINO_FAST=0`.

Its own module: the choice is read by code that never builds a `FastViT` (configs checking a mode up front,
`geodino.inference` keying its prepared models by path); `geodino.models.frozen` re-exports every public name here.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any

import torch

from geodino.errors import ConfigError
from geodino.models.onednn_linear import onednn_linears_available
from geodino.models.tf32x3 import _tensor_core_tf32

__all__ = ["ENV_SWITCH", "MODES", "FastPath", "bf16_default", "choose_path", "env_mode", "fast_mode"]

MODES = ("auto", "off", "float32", "float32-ieee", "bfloat16", "int8", "float32-mkl")
ENV_SWITCH = "GEODINO_FAST"  # "0" / "off" turns the fast path off everywhere; a mode name forces that mode


@dataclass(frozen=True)
class FastPath:
    """Which inference path runs: `name` as printed and recorded (e.g. 'fast-bfloat16-compiled' or 'eager')."""

    enabled: bool
    dtype: str = "float32"  # float32 | bfloat16 | int8
    compile: bool = False
    # a description for the console, not part of what runs: paths that compute the same compare equal (the key
    # under which `geodino.inference.accelerate` keeps its prepared models)
    reason: str = field(default="", compare=False)
    tf32x3: bool = False  # float32 projections as three TF32 tensor-core products (`_Tf32x3Linear`)
    onednn: bool = False  # CPU float32 projections through oneDNN, GELU fused (`onednn_linear._OneDnnLinear`)

    @property
    def name(self) -> str:
        if not self.enabled:
            return "eager"
        variant = "-3xtf32" if self.tf32x3 else "-onednn" if self.onednn else ""
        return f"fast-{self.dtype}{variant}" + ("-compiled" if self.compile else "")


def _compiler_available(device: torch.device) -> bool:
    """Inductor needs a C++ compiler on CPU and triton on CUDA; without them the fast path runs eagerly."""
    if device.type == "cpu":
        return shutil.which(os.environ.get("CXX", "g++")) is not None or shutil.which("c++") is not None
    if device.type == "cuda":
        import importlib.util

        return importlib.util.find_spec("triton") is not None
    return False


_OFF_WORDS = ("0", "false", "no", "off")
_ON_WORDS = ("1", "true", "yes", "on")


def fast_mode(value: Any, key: str = "fast path mode") -> str:
    """`value` as one of `MODES`, or a ConfigError naming `key`. YAML reads `off` as false and `on` as true (a config
    then holds 'False' / 'True'), so booleans and their spellings mean 'off' and 'auto'."""
    word = str(value).strip().lower()
    mode = "off" if word in _OFF_WORDS else "auto" if word in _ON_WORDS else word
    if mode not in MODES:
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(MODES)}")
    return mode


def env_mode() -> str | None:
    """The mode `GEODINO_FAST` forces ('off' for 0 / off / false / no; a mode name), or None when it is unset or
    asks for the default (1 / on / auto); a ConfigError for anything else. It overrides every setting in code or
    config. Commands that write a run folder check it up front (a bad value otherwise failed after set-up)."""
    env = os.environ.get(ENV_SWITCH, "").strip().lower()
    if not env or env in (*_ON_WORDS, "auto"):
        return None
    if env in _OFF_WORDS:
        return "off"
    if env not in MODES:
        raise ConfigError(f"{ENV_SWITCH}={env!r} is not a fast-path mode; use one of {', '.join(MODES)} or 0")
    return env


def bf16_default(device: str | torch.device) -> bool:
    """Whether features on `device` run in bf16 unless asked otherwise (the default of `amp`, the eager autocast and
    the fast path's 'auto' mode): on a GPU that computes bf16 natively, torch's
    `torch.cuda.is_bf16_supported(including_emulation=False)` asked with `device` current (CUDA: compute capability
    8.0 and later; ROCm: yes). Not on CUDA GPUs of capability 7.x (T4, V100): bf16 is emulated there (slow matrix
    products, SDPA's math fallback, inductor skipping bf16 graphs), so they default to float32. A CUDA device with
    no GPU visible keeps bf16, the CUDA default (the caller meets that error later); every other device float32."""
    device = torch.device(device)
    if device.type != "cuda":
        return False
    if not torch.cuda.is_available():
        return True
    if device.index is None:  # the current GPU: what torch's check asks about
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    with torch.cuda.device(device):
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))


def choose_path(
    device: str | torch.device = "cpu", mode: str = "auto", compile: bool | None = None, amp: bool | None = None
) -> FastPath:
    """The path for `device`: `mode` 'auto' keeps the eager model's numerics (float32 on CPU and on CUDA GPUs
    without native bf16, bf16 on the others, where the eager path autocasts: `bf16_default`) with prepared weights
    and compilation when a compiler is present (callers with small jobs pass `compile=False`: see
    `geodino.inference.COMPILE_MIN_IMAGES`); 'float32' / 'bfloat16' / 'int8' force the dtype (int8: CPU only,
    eager); 'off' (or GEODINO_FAST=0) is the eager model as it is.
    float32 on a GPU with TF32 tensor cores runs its projections as 3xTF32 (`_Tf32x3Linear`); 'float32-ieee'
    keeps plain float32 products there. float32 on a CPU runs its projections through oneDNN with the GELU fused
    (`onednn_linear`, where the build has it); 'float32-mkl' keeps the MKL products inductor packs (CPU only).
    `amp` (the FrozenBackbone setting) picks bf16 in auto mode when set."""
    device = torch.device(device)
    env = env_mode()
    if env == "off":
        return FastPath(False, reason=f"{ENV_SWITCH}={os.environ[ENV_SWITCH].strip().lower()}")
    mode = fast_mode(env or mode)
    if mode == "off":
        return FastPath(False, reason="mode=off")
    if mode == "auto":
        bf16 = amp if amp is not None else bf16_default(device)
        mode = "bfloat16" if bf16 else "float32"
    if mode == "float32-mkl" and device.type != "cpu":
        raise ConfigError(f"fast path float32-mkl is a CPU mode (MKL float32 products), not for {device}")
    tf32x3 = mode == "float32" and _tensor_core_tf32(device)
    onednn = mode in ("float32", "float32-ieee") and device.type == "cpu" and onednn_linears_available()
    mode = "float32" if mode in ("float32-ieee", "float32-mkl") else mode
    if mode == "int8":
        if device.type != "cpu":
            raise ConfigError(f"fast path int8 runs on CPU only (torch.ao dynamic quantisation), not on {device}")
        return FastPath(True, "int8", False, reason="int8 dynamic quantisation (eager)")
    can = _compiler_available(device)
    use = can if compile is None else (compile and can)
    why = "compiled" if use else ("compile off" if compile is False else "no compiler found: eager")
    return FastPath(True, mode, use, reason=why, tf32x3=tf32x3, onednn=onednn)
