"""Put a `FrozenBackbone` on the fast inference path (`geodino.models.frozen`) and report what ran.

`accelerate(backbone)` swaps the wrapped geodino ViT for a `FastViT` in place and returns the `FastPath` used;
`fast_backbone(backbone)` does the same for the duration of a `with` block and restores the eager model after
(the caller may own the backbone). timm baselines and `GEODINO_FAST=0` leave the backbone unchanged ('eager').

Compilation costs a warm-up (tens of seconds, once per tile shape and run), so in 'auto' mode it is used only for
jobs of at least `compile_min_images(device type, dtype, image size)` images, counted in 224 px image equivalents
(`COMPILE_MIN_IMAGES` per device type; float32 on CPU at images over 224 px: `CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES`);
smaller jobs run the prepared weights eagerly. The break-even is far later on a GPU, where the forward
the compile speeds up is already hundreds of times faster than on a 2-core CPU (ViT-S/16: ~9 against 3,000-7,000
img/s).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from geodino.backbones.device import weights_device
from geodino.errors import ConfigError, plural
from geodino.models.fast_choice import bf16_default, env_mode, fast_mode
from geodino.models.frozen import ENV_SWITCH, FastPath, FastViT, choose_path

__all__ = [
    "COMPILE_MIN_IMAGES",
    "CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES",
    "Throughput",
    "accelerate",
    "compile_min_images",
    "cpu_bf16_hint",
    "fast_backbone",
    "image_equivalents",
    "job_path",
    "native_bf16_cpu",
    "path_of",
    "plan_path",
    "prepare_embed",
    "runs_in",
    "runs_on",
    "weights_stamp",
]

# 224 px images from which a compile pays for its warm-up, per device type (others use the CPU value).
# cpu: ViT-S, ~15-60 s warm-up against ~0.03 s saved per image on 2 cores.
# cuda (H200, benchmarks/gpu.sh): ViT-S bf16, ~26 s warm-up in `geodino embed` against ~76 us saved per image
# against eager autocast (6,981 img/s, compiled 14,937), so ~340k images (~380k against the uncompiled bf16 weights,
# 7,357 img/s); 300k is that order of magnitude, not a fitted value. An 8k x 8k raster (441 tiles of 512 px, ~2,300
# images) ran at 0.48x of eager end to end with the compile, 1.06x without.
COMPILE_MIN_IMAGES: dict[str, int] = {"cpu": 2000, "cuda": 300_000}
COMPILE_REF_PIXELS = 224 * 224
# float32 jobs on CPU from which `geodino embed` suggests --bf16 when the CPU computes bf16 natively: the generic CPU
# compile threshold, a job where minutes are at stake.
BF16_HINT_MIN_IMAGES = COMPILE_MIN_IMAGES["cpu"]
# float32 on CPU at images over 224 px (feature rasters' tiles, large probe images): attention, which the compile does
# not speed up, grows with the token count and is a third of the forward at embed's 512 px tiles, so the compiled
# float32 forward gains only ~1.12x there (0.87-1.26, sessions 15-18) where 224 px images gain ~1.2x. Measured end to
# end (benchmarks/embed_versions.py, ViT-S, 2 cores): at 400 tiles of 512 px (~2,100 images, just over the CPU
# threshold above) the compiled run, warm-up included, took 188-207 s against 176-194 s eager. With a ~40 s warm-up
# the break-even is ~800 such tiles (~4,200 images) at the median gain, and up to 1,800 (9,400) at the low end of its
# spread; 5,000 is past the median's. A 16k x 16k raster (~9,700 images) compiles.
CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES = 5_000


def compile_min_images(device_type: str, dtype: str, image_size: tuple[int, int] = (224, 224)) -> int:
    """The job size, in 224 px image equivalents, from which 'auto' compiles the fast path: per device type
    (`COMPILE_MIN_IMAGES`, unknown types use the CPU value), and later for float32 on CPU at images larger than
    224 px, where the compiled forward gains less (`CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES`)."""
    if device_type == "cpu" and dtype == "float32" and image_size[0] * image_size[1] > COMPILE_REF_PIXELS:
        return CPU_FLOAT32_LARGE_COMPILE_MIN_IMAGES
    return COMPILE_MIN_IMAGES.get(device_type, COMPILE_MIN_IMAGES["cpu"])


def accelerate(
    backbone: Any,
    *,
    mode: str = "auto",
    compile: bool | None = None,
    n_images: int | None = None,
    image_size: tuple[int, int] = (224, 224),
) -> FastPath:
    """Replace `backbone.model` (a geodino ViT inside a FrozenBackbone) by its fast path, in place.

    `mode`: auto | off | float32 | float32-ieee | float32-mkl | bfloat16 | int8 (see `choose_path`); `compile`: None
    = auto (on when a compiler is present and, if `n_images` images of `image_size` (h, w) are to run, the job reaches
    `compile_min_images` for the device, the path's dtype and that size). Returns the path used
    (`FastPath(enabled=False)` when the backbone stays eager)."""
    path = plan_path(backbone, mode=mode, compile=compile, n_images=n_images, image_size=image_size)
    model = backbone.model
    if isinstance(model, FastViT):
        eager = backbone.__dict__.get("_eager_model")
        if not path.enabled:  # asked for the eager model (mode off, GEODINO_FAST=0): not the prepared one
            backbone.model = eager
            return path
        if eager is None:  # a FastViT placed there by hand: nothing to match it against
            return path
        # matched to the eager weights below like a restored backbone: a backbone that stayed accelerated while its
        # eager weights changed (load_state_dict, an in-place update) served the old prepared copy on every call
        model = eager
    device = weights_device(backbone)
    if path.enabled:
        backbone.__dict__["_eager_model"] = model  # kept outside nn.Module registration (not a submodule)
        # one FastViT per (eager model, path), kept on the backbone object: callers that restore the eager model
        # after each job (embed_raster) reuse the prepared weights and compiled graphs on the next job. Paths equal
        # up to their reason share one (FastPath.reason does not take part in equality); the held model takes the
        # current path so that it reports the current reason.
        # The eager weights' stamp is part of the match: a teacher that keeps training, load_state_dict or an
        # in-place band adaptation changes them, and the prepared copy then served the old weights silently.
        cache = backbone.__dict__.setdefault("_fast_models", {})
        held = cache.get((path, device))
        stamp = weights_stamp(model)
        if held is None or held[0] is not model or held[2] != stamp:
            cache.pop((path, device), None)  # its compiled graphs go with it
            held = cache[(path, device)] = (model, FastViT(model, path).to(device), stamp)
        held[1].path = path
        backbone.model = held[1]
    return path


def plan_path(
    backbone: Any,
    *,
    mode: str = "auto",
    compile: bool | None = None,
    n_images: int | None = None,
    image_size: tuple[int, int] = (224, 224),
) -> FastPath:
    """The path `accelerate` puts `backbone` on for these arguments, decided without preparing any weights (so that
    a caller can look up what that path computed before, e.g. a probe's feature cache, before paying for it). A
    backbone accelerated before keeps its path unless the mode turns the fast path off; an explicit mode that names
    other numerics, or any explicit mode on a backbone that is not a geodino ViT, says so in one warning."""
    check_compile_flag(compile)
    model = backbone.model
    amp = getattr(backbone, "amp", None)
    if isinstance(model, FastViT):
        wanted = choose_path(weights_device(backbone), mode, compile, amp)
        if backbone.__dict__.get("_eager_model") is not None and not wanted.enabled:
            return FastPath(False, reason="mode=off")
        if _explicit(mode) and _numerics(wanted) != _numerics(model.path):
            _warn(
                backbone,
                f"backbone {getattr(backbone, 'spec', '')} keeps the fast path {model.path.name} it was accelerated "
                f"to before; {_mode_key()}={mode!r} is not applied. Call accelerate(backbone, mode='off') first to "
                f"prepare it as {mode!r}",
            )
        return model.path
    if getattr(backbone, "kind", "geodino") != "geodino" or not hasattr(model, "rope_embed"):
        if _explicit(mode):  # an explicit dtype ran the backbone's own eager numerics without a word
            key = _mode_key()
            _warn(
                backbone,
                f"fast path {key}={mode!r} does not apply to backbone {getattr(backbone, 'spec', '')} (not a geodino "
                f"ViT): it runs its own model eagerly (path 'eager'); pass {key}=auto or off for it",
            )
        return FastPath(False, reason="not a geodino ViT")
    return job_path(weights_device(backbone), mode, compile, amp, n_images, image_size)


def _explicit(mode: str) -> bool:
    """Whether `mode` names a fast path's numerics (not 'auto' or 'off'), as a caller's argument or GEODINO_FAST."""
    env = env_mode()
    return env != "off" and fast_mode(env or mode) not in ("auto", "off")


def _numerics(path: FastPath) -> tuple[str, bool, bool]:
    """What a path computes, whatever its compile: the dtype and the projections' route."""
    return (path.dtype, path.tf32x3, path.onednn)


def _mode_key() -> str:
    """The key that set the mode, as the user writes it: `tasks.<name>.features.fast` inside a probe suite's task,
    else `accelerate`'s `mode`."""
    from geodino.user_keys import user_key

    key = user_key("fast")
    return "mode" if key == "fast" else key


def _warn(backbone: Any, message: str) -> None:
    """One warning line pointing at the caller's code (not at geodino's), once per backbone and message: a probe
    plans its path and then accelerates, which asked twice."""
    import warnings

    from geodino.models.caller import user_stacklevel

    said = backbone.__dict__.setdefault("_fast_mode_warnings", set()) if hasattr(backbone, "__dict__") else set()
    if message not in said:
        said.add(message)
        warnings.warn(message, stacklevel=user_stacklevel())


def job_path(
    device: torch.device,
    mode: str = "auto",
    compile: bool | None = None,
    amp: bool | None = None,
    n_images: int | None = None,
    image_size: tuple[int, int] = (224, 224),
) -> FastPath:
    """`choose_path` for a job of `n_images` images of `image_size` (h, w): with `compile=None` the compile is kept
    only when the job reaches `compile_min_images` for the device, the path's dtype and that size (unknown size:
    kept). What `accelerate` and the distillation teacher decide with."""
    check_compile_flag(compile)
    path = choose_path(device, mode, compile, amp)
    job = image_equivalents(n_images, *image_size)  # None when n_images is
    if compile is None and job is not None and path.compile:
        if job < compile_min_images(device.type, path.dtype, image_size):
            # the warm-up would cost more than the compiled forward saves
            path = dataclasses.replace(path, compile=False, reason="compile off: job too small to repay the warm-up")
    return path


def check_compile_flag(compile: Any) -> None:
    """One line when `compile` is not True, False or None: a string is truthy, so compile="no" (or "false" from a
    config) paid a compile warm-up nobody asked for."""
    if compile is not None and (isinstance(compile, str) or compile not in (True, False)):
        raise ConfigError(f"compile={compile!r} must be True, False or None (None: compile when the job repays it)")


def weights_stamp(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """(storage address, in-place version counter) of every parameter and buffer: changes when weights are loaded,
    updated in place or replaced, so a prepared fast path can tell that it is stale."""

    def version(t: torch.Tensor) -> int:
        try:
            return int(t._version)
        except RuntimeError:  # an inference tensor keeps no version counter
            return -1

    return tuple((t.data_ptr(), version(t)) for t in model.state_dict(keep_vars=True).values())


@contextmanager
def fast_backbone(backbone: Any, **kwargs: Any) -> Iterator[FastPath]:
    """`accelerate(backbone, **kwargs)` for the body of a `with` block; the eager model is restored after."""
    before, eager = backbone.model, backbone.__dict__.get("_eager_model")
    path = accelerate(backbone, **kwargs)
    try:
        yield path
    finally:
        restore_model(backbone, before, eager)


def restore_model(backbone: Any, model: Any, eager: Any) -> None:
    """Give `backbone` back the model it had before a job accelerated it (and the eager model it knew of)."""
    backbone.model = model
    if eager is None:
        backbone.__dict__.pop("_eager_model", None)
    else:
        backbone.__dict__["_eager_model"] = eager


def prepare_embed(
    backbone: Any,
    *,
    tile: int | tuple[int, int],
    batch_size: int,
    n_tiles: int | None = None,
    layers: Any = "last",
    mode: str = "auto",
    compile: bool | None = None,
    norm: bool = True,
) -> dict[str, str]:
    """What `geodino embed` calls once per run: accelerate `backbone` in place, pay the compile warm-up on the
    call `embed` makes (batch_size x tile x tile, its layers and final norm) before the timed work unless that
    graph is compiled already (a backbone object reused for another raster), and return the metadata the feature raster
    records: {"inference_path": "fast-float32-onednn-compiled" | ... | "eager", "inference_dtype": "float32" | ...}."""
    from geodino.backbones import layer_indices

    h, w = (tile, tile) if isinstance(tile, int) else tile
    path = accelerate(backbone, mode=mode, compile=compile, n_images=n_tiles, image_size=(h, w))
    model = backbone.model
    if isinstance(model, FastViT) and path.compile:
        model.warmup(batch_size, h, w, layer_indices(layers, model.n_blocks), norm)
    return {"inference_path": path.name, "inference_dtype": runs_in(backbone)}


def image_equivalents(n_tiles: int | None, h: int, w: int) -> int | None:
    """`n_tiles` tiles of h x w px counted in 224 px images, the unit the compile and hint thresholds are measured
    in (None when the job size is unknown)."""
    return None if n_tiles is None else int(n_tiles * h * w / COMPILE_REF_PIXELS)


def native_bf16_cpu() -> str | None:
    """'AMX' or 'AVX-512 BF16' when this CPU multiplies bf16 matrices in hardware (there, bf16 weights made
    feature rasters 1.6-3.1x faster than the compiled float32 path, side by side), else None."""
    probes = (("AMX", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported"))
    for name, probe in probes:
        check = getattr(torch.cpu, probe, None)  # private torch helpers: absent on other builds, then no hint
        if check is not None and check():
            return name
    return None


def cpu_bf16_hint(backbone: Any, inference_dtype: str, n_images: int | None) -> str | None:
    """One line suggesting `--bf16` for a large float32 job on a CPU with native bf16 matrix products, or None
    (another device or dtype, a small or unknown job size, a mode forced with GEODINO_FAST, no native bf16).

    float32 stays the CPU default because its features equal the eager model's; the hint says what bf16 costs and
    gains, measured side by side (docs/fast_inference.md)."""
    if weights_device(backbone).type != "cpu" or inference_dtype != "float32" or os.environ.get(ENV_SWITCH):
        return None
    if n_images is None or n_images < BF16_HINT_MIN_IMAGES or getattr(backbone, "kind", None) != "geodino":
        return None
    unit = native_bf16_cpu()
    if unit is None:
        return None
    return (
        f"geodino: this CPU multiplies bf16 in hardware ({unit}); --bf16 made feature rasters 1.6-3.1x faster than "
        "the float32 fast path in geodino's benchmarks, at a feature cosine >= 0.99998 to float32 "
        "(docs/fast_inference.md)"
    )


def _amp(backbone: Any) -> bool:
    """Whether the eager model autocasts to bf16: `amp`, by default on GPUs with native bf16 (`bf16_default`)."""
    amp = getattr(backbone, "amp", None)
    return bool(amp if amp is not None else bf16_default(weights_device(backbone)))


def runs_in(backbone: Any) -> str:
    """The dtype a FrozenBackbone's features are computed in as it stands: its fast path's ('float32', 'bfloat16',
    'int8'), else bfloat16 under the eager model's autocast (`amp`, default on GPUs with native bf16), else float32
    (what feature rasters record and probe caches key on)."""
    return runs_on(backbone, path_of(backbone))


def runs_on(backbone: Any, path: FastPath) -> str:
    """The dtype `backbone` computes its features in on `path` (`runs_in` once it runs there): the path's own when
    it is a fast path, else the eager model's (bfloat16 under its autocast, float32 otherwise)."""
    if path.enabled:
        return path.dtype
    if getattr(backbone, "kind", None) == "baseline":  # parameter-free statistics, always float32
        return "float32"
    return "bfloat16" if _amp(backbone) else "float32"


def path_of(backbone: Any) -> FastPath:
    """The path a (possibly accelerated) FrozenBackbone runs."""
    model = getattr(backbone, "model", backbone)
    return model.path if isinstance(model, FastViT) else FastPath(False)


class Throughput:
    """Images and seconds of a feature job, for the one-line report `features: <path>, N images, X img/s`."""

    def __init__(self) -> None:
        self.images = 0
        self.t0 = time.perf_counter()

    def add(self, n: int) -> None:
        self.images += n

    def line(self, what: str, path: FastPath) -> str:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        why = f" ({path.reason})" if path.reason else ""  # an eager path has no reason: "path eager (eager)" before
        return (
            f"{what}: path {path.name}{why}, {plural(self.images, 'image')} in {dt:.1f} s, {self.images / dt:.1f} img/s"
        )
