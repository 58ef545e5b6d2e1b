"""`FrozenBackbone`: an eval-mode, no-grad backbone with its input normalisation, multi-layer features and a
fingerprint of its weights (what feature rasters and probes record)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from geodino.backbones.layers import backbone_layer_indices
from geodino.backbones.timm import check_timm_layers, timm_features, timm_geometry
from geodino.backbones.weights_digest import cached_sha256
from geodino.backbones.weights_digest import sha256_path as sha256_path  # re-exported: its old home
from geodino.errors import ConfigError, InputError, plural
from geodino.models.fast_choice import bf16_default

FLOAT_REFLECTANCE_MAX = 2.0
"""Float input above this is not reflectance (bright snow and specular water stay below ~1.6): with a DN record,
`preprocess` refuses it rather than read DN as reflectance."""


class FrozenBackbone(nn.Module):
    """An eval-mode, no-grad backbone with normalisation and multi-layer features (see module docstring)."""

    # registered buffers (declared: nn.Module's __getattr__ is typed Tensor | Module)
    mean: Tensor
    std: Tensor

    def __init__(
        self,
        model: nn.Module,
        *,
        spec: str,
        kind: str,
        mean: Sequence[float],
        std: Sequence[float],
        bands: list[str] | None,
        sensor: Any = None,
        fingerprint_source: dict[str, Any] | None = None,
        amp: bool | None = None,
    ) -> None:
        super().__init__()
        if amp is not None and (isinstance(amp, str) or amp not in (True, False)):
            # a string is truthy: amp="false" (or "no") from a config turned bf16 autocast on
            raise ConfigError(f"amp={amp!r} must be True, False or None (None: bf16 on GPUs with native bf16)")
        self.model = model.eval().requires_grad_(False)
        self.spec = spec
        self.kind = kind  # "geodino", "timm" or "baseline" (geodino.backbones.colour)
        self.bands = bands
        self.sensor = sensor
        self.amp = amp
        self._fp_source = fingerprint_source or {"spec": spec}
        # where mean/std came from (a recorded export, a passed sensor, a default) and the record itself
        self.norm_source = f"sensor {getattr(sensor, 'name', sensor)}" if sensor is not None else "spec defaults"
        self.normalization: dict[str, Any] | None = None
        self._fingerprint: str | None = None
        self._weights_sha256: str | None = None
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1), persistent=False)
        if kind in ("geodino", "baseline"):
            # a DinoVisionTransformer, its FastViT or a colour baseline: read by attribute (typed Tensor | Module)
            self.patch_size = int(model.patch_size)  # type: ignore[arg-type]
            self.embed_dim = int(model.embed_dim)  # type: ignore[arg-type]
            self.in_chans = int(model.in_chans)  # type: ignore[arg-type]
            self.n_blocks = int(model.n_blocks)  # type: ignore[arg-type]
        else:
            self.patch_size, self.embed_dim, self.in_chans, self.n_blocks = timm_geometry(model)
        # a depth fixed by construction (the colour baseline's one block): `four_last` on it is not warned about
        self.fixed_depth = bool(getattr(model, "fixed_depth", False))
        if self.mean.numel() != self.in_chans:
            raise ConfigError(
                f"normalisation has {plural(self.mean.numel(), 'band')} but backbone {spec} takes {self.in_chans}; "
                "pass a sensor with matching bands (sensor=..., bands=[...])"
            )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (spawned embed workers, torch.save) without the prepared fast paths it keeps for reuse
        (`geodino.inference.accelerate`): each is a second copy of the weights, prepared again where needed."""
        state = dict(super().__getstate__())
        state.pop("_fast_models", None)
        return state

    # -- identity ---------------------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """sha256 of the weights file (plus the options that change the weights), or of the spec."""
        if self._fingerprint is None:
            src = dict(self._fp_source)
            if "file" in src:
                src["file"] = self.weights_sha256
            self._fingerprint = hashlib.sha256(json.dumps(src, sort_keys=True, default=str).encode()).hexdigest()
        return self._fingerprint

    @property
    def weights_sha256(self) -> str | None:
        """sha256 of the weights file (what `sha256sum` prints; a folder: its files' names and contents), None for a
        backbone without one (`arch:`, `timm:`, `baseline:`). The fingerprint hashes it with the options, so it alone
        cannot be checked against the file: outputs record this too (`describe_backbone`). Hashed once per object, and
        read from the per-user digest cache while the file is unchanged (`geodino.backbones.weights_digest`)."""
        if "file" not in self._fp_source:
            return None
        if getattr(self, "_weights_sha256", None) is None:  # getattr: an object pickled before it existed
            self._weights_sha256 = cached_sha256(Path(self._fp_source["file"]))
        return self._weights_sha256

    def train(self, mode: bool = True) -> FrozenBackbone:
        """Always stays in eval mode (frozen)."""
        return super().train(False)

    def extra_repr(self) -> str:
        return (
            f"spec={self.spec!r}, in_chans={self.in_chans}, patch_size={self.patch_size}, "
            f"embed_dim={self.embed_dim}, n_blocks={self.n_blocks}"
        )

    # -- input ------------------------------------------------------------------------------------------------
    def dn_scale(self) -> tuple[Tensor, Tensor] | None:
        """(scale, offset) per band of the DN -> reflectance step the backbone's record carries (an export's
        record, or the sensor passed with it), or None: a bare mean/std (e.g. a foreign timm file) says nothing
        about the data's units (`models.checkpoints.normalization.dn_scale_of`, the rule embed and the probes use)."""
        from geodino.models.checkpoints.normalization import dn_scale_of

        found = dn_scale_of(self.normalization)
        if found is None:
            return None
        return torch.tensor(found[0], dtype=torch.float32), torch.tensor(found[1], dtype=torch.float32)

    def preprocess(self, x: Tensor, rule: str = "auto") -> Tensor:
        """Raw pixels (DN, any dtype: what rasterio, PIL or `torchvision.io.read_image` give) [B, C, H, W] or
        [C, H, W] -> the model's input: DN -> reflectance, then `normalize`. `rule`: "record" scales by the record's
        scale and offset (`dn_scale`); "dtype" by dtype (`geodino.data.dtype_rule`, as `geodino embed` and the
        probes: uint8 / 255, uint16 and int16 / 10000, floats as they are: reflectance; int8 and 32/64-bit integers
        refused, naming the ways to give a scale); "auto" (default) takes the record when it fits the data (the
        probes' rule, `data.bit_depth.scale_misfit`: integer DN of the bit depth it is for, never int8 codes), else
        the dtype rule. "auto" decides on the first batch of each dtype and keeps that choice for later batches of
        it, so every batch of one archive is scaled alike (decided per batch, a dark 16-bit batch with values <= 255
        was read as 8-bit DN by an 8-bit record, 39x too bright, while the next batch was /10000); a later batch that
        contradicts the choice is refused, naming the rule to pass. What official DINOv3's `make_transform`
        (ToDtype(scale=True) + Normalize) does for 8-bit RGB."""
        _tensor(x, "preprocess")
        if x.ndim not in (3, 4):
            raise InputError(f"preprocess takes an image [C, H, W] or a batch [B, C, H, W], got shape {tuple(x.shape)}")
        if x.is_complex():
            raise InputError(f"preprocess takes real-valued pixels, got {x.dtype}")
        if rule not in ("auto", "record", "dtype"):
            raise InputError(f"preprocess rule={rule!r} is not one of 'auto', 'record', 'dtype'")
        dn = self.dn_scale()
        if rule == "record" and dn is None:
            raise InputError(
                f"preprocess rule='record' but backbone {self.spec} carries no DN scale (no sensor or export record); "
                "pass a sensor when loading it, or use rule='dtype'"
            )
        identity = dn is not None and bool((dn[0] == 1).all() and (dn[1] == 0).all())  # floats read alike either way
        if rule == "auto" and dn is not None and not identity and x.is_floating_point() and x.numel():
            top = float(x.detach().float().abs().max())
            if top > FLOAT_REFLECTANCE_MAX:  # float DN (x.float() of a uint16 read) taken as reflectance: 1e4 x off
                raise InputError(
                    f"float input reaches {top:g}, which is not reflectance, but floats are read as reflectance; pass "
                    "the DN as integers (the record's scale applies), or preprocess(x, rule='record') to scale these "
                    "floats by it, or divide them to reflectance yourself"
                )
        if rule == "dtype" or (dn is not None and rule == "auto" and not self._record_fits(x, dn)):
            dn = None
        if dn is not None:
            scale, offset = (v.to(x.device).reshape(-1, 1, 1) for v in dn)
            y = x.float() * scale + offset
            if identity and rule == "auto" and not x.is_floating_point():
                self._warn_dn_as_given(y)
        elif not x.is_floating_point():
            y = x.float() / self._dtype_divisor(x)
        else:
            y = x.float()
        return self.normalize(y)

    def _dtype_divisor(self, x: Tensor) -> float:
        """What integer input `x` is divided by under the dtype rule (`geodino.data.dtype_rule`: 255 for uint8,
        10000 for uint16/int16), or its one-line refusal for a type without a default (int8, 32/64-bit integers),
        naming preprocess's ways to give a scale."""
        import numpy as np

        from geodino.data.dtype_rule import dtype_divisor, has_dtype_default

        try:
            dtype = np.dtype(str(x.dtype).removeprefix("torch."))
        except TypeError:  # a torch-only type (qint8, float8 ...): no DN of any sensor
            raise InputError(f"preprocess takes DN or reflectance pixels, got {x.dtype}; {self._scale_fix()}") from None
        if has_dtype_default(dtype):  # every batch of an archive: no refusal text built (it reads the record)
            return dtype_divisor(dtype)
        return dtype_divisor(dtype, "preprocess's input", self._scale_fix())

    def _scale_fix(self) -> str:
        """How a caller of `preprocess` gives the DN scale of a type without a default (the refusal's end)."""
        record = ", or preprocess(x, rule='record') for the backbone's DN scale" if self.dn_scale() is not None else ""
        return f"if it is imagery, pass reflectance floats: preprocess(x.float() * FACTOR), FACTOR its DN scale{record}"

    def _warn_dn_as_given(self, y: Tensor) -> None:
        """One warning (once per backbone) when a record without a sensor that reads integers as given (a foreign HF
        processor's rescale 1 or do_rescale false, which transformers follows) meets DN above 2 while its mean/std
        are in reflectance units (|mean| <= 2): such a processor was likely made for float reflectance."""
        if (self.normalization or {}).get("sensor") or self.__dict__.get("_warned_as_given") or not y.numel():
            return
        top = float(y.detach().abs().max())
        if float(self.mean.abs().max()) > FLOAT_REFLECTANCE_MAX or top <= FLOAT_REFLECTANCE_MAX:
            return
        self.__dict__["_warned_as_given"] = True
        import warnings

        from geodino.models.caller import user_stacklevel

        warnings.warn(
            f"backbone {self.spec} reads integer input as given (its processor's rescale is 1, as transformers "
            f"applies it) but its mean/std are in reflectance units, and these values reach {top:g}; pass "
            "reflectance floats, or preprocess(x, rule='dtype') to divide by dtype (uint16 / 10000, uint8 / 255)",
            stacklevel=user_stacklevel(),
        )

    def _record_fits(self, x: Tensor, dn: tuple[Tensor, Tensor]) -> bool:
        """ "auto"'s choice for `x`: whether the record's scale fits it, decided on the first batch of each dtype
        and kept (see `preprocess`); a later batch whose own answer differs is refused."""
        misfit = self._dn_misfit(x, *dn)
        choices = self.__dict__.setdefault("_dn_choices", {})
        first = choices.setdefault(x.dtype, not misfit)
        if first and misfit:
            raise InputError(
                f"this {x.dtype} batch does not fit the backbone's DN record ({misfit}), but earlier {x.dtype} batches "
                f"were scaled by it: pass preprocess(x, rule='dtype') for every batch (uint16 / 10000, uint8 / 255), "
                "or rule='record', so all batches are scaled alike"
            )
        return first

    @staticmethod
    def _dn_misfit(x: Tensor, scale: Tensor, offset: Tensor) -> str:
        """`data.bit_depth.scale_misfit` for a tensor (float tensors, bf16 included, are reflectance)."""
        import numpy as np

        from geodino.data.bit_depth import scale_misfit

        if x.is_floating_point():
            return "the data is float, read as reflectance"
        dtype = np.dtype(str(x.dtype).removeprefix("torch."))
        top = float(x.to(torch.int32).max()) if dtype in (np.uint16, np.int16) and x.numel() else None
        return scale_misfit(dtype, int(x.shape[-3]), scale.numpy(), offset.numpy(), top)

    def normalize(self, x: Tensor) -> Tensor:
        """Standardise reflectance-scaled float input [B, C, H, W] or [C, H, W] with the backbone's mean/std.
        Integer input (raw DN) is refused: `preprocess` scales it first."""
        _tensor(x, "normalize")
        if not x.is_floating_point():
            raise InputError(
                f"normalize takes reflectance-scaled float input, got {x.dtype} (raw DN?); use "
                "backbone.preprocess(x), which scales DN to reflectance first (or divide by the data's DN scale)"
            )
        if x.ndim not in (3, 4):
            raise InputError(f"normalize takes an image [C, H, W] or a batch [B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[-3] != self.in_chans:
            raise self._bands_error(x)
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        return (x.float() - mean) / std

    def normalize_(self, x: Tensor) -> Tensor:
        """`normalize` in place on a float32 batch (the embed sweep's own buffer): the same subtraction and division,
        the same bits, and no batch-sized temporaries."""
        self.normalize(x[..., :0])  # its checks (a float tensor, its shape, its bands) on an empty slice
        if x.dtype != torch.float32:
            raise InputError(f"normalize_ takes a float32 batch, got {x.dtype}; use normalize")
        return x.sub_(self.mean.to(x.device)).div_(self.std.to(x.device))

    def _spec_with(self, option: str) -> str:
        """The spec with one more `?key=value` option, for messages that say how to load it otherwise."""
        return f"{self.spec}{'&' if '?' in self.spec else '?'}{option}"

    def _bands_error(self, x: Tensor, layout: str = "[B, C, H, W] or [C, H, W]") -> InputError:
        """The line for an input whose band axis (-3) is not the backbone's bands. An image read channels-last
        (PIL, numpy, rasterio's reshape_as_image: [H, W, C]) is named as such: its height was read as 64 bands."""
        c = x.shape[-3]
        if x.shape[-1] == self.in_chans:
            perm = "x.permute(2, 0, 1)" if x.ndim == 3 else "x.permute(0, 3, 1, 2)"
            return InputError(
                f"input of shape {tuple(x.shape)} has its {self.in_chans} bands last, but backbone {self.spec} takes "
                f"bands first ({layout}); pass {perm}"
            )
        return InputError(
            f"input has {plural(c, 'band')} but backbone {self.spec} takes {self.in_chans}; select the matching "
            "bands, or adapt its patch embedding to your bands: load_backbone(..., bands=[...]) in Python, "
            f"'{self._spec_with('bands=red,green,blue')}' (your band names) as a -b/--backbone spec"
        )

    def _check(self, x: Tensor) -> None:
        _tensor(x, "features")
        if x.ndim != 4:
            one = "; add the batch axis: x[None] (or x.unsqueeze(0))" if x.ndim == 3 else ""
            raise InputError(f"expected an image batch [B, C, H, W], got shape {tuple(x.shape)}{one}")
        if not x.is_floating_point():  # raw DN (a uint8 / uint16 read) ran unstandardised, 255-10000x off
            raise InputError(
                f"features takes normalised float input, got {x.dtype} (raw DN?); pass backbone.preprocess(x), which "
                "scales DN to reflectance and standardises it"
            )
        b, c, h, w = x.shape
        if c != self.in_chans:
            raise self._bands_error(x, "[B, C, H, W]")
        p = self.patch_size
        if h % p or w % p:
            raise InputError(
                f"image size {h}x{w} is not a multiple of the patch size {p}; crop or pad it to "
                f"{(h // p) * p or p}x{(w // p) * p or p} (or {-(-h // p) * p}x{-(-w // p) * p})"
            )
        if not b:  # torch's own reshape error ("0 elements ... ambiguous") named nothing the caller did
            raise InputError(f"features got an empty batch (shape {tuple(x.shape)}); pass at least one image")

    def _autocast(self, device: torch.device):
        """bf16 autocast for the eager model when `amp` (default: on GPUs with native bf16, `bf16_default`; not on
        CUDA 7.x, where bf16 is emulated). A fast path (`FastViT`) turns autocast off inside its own forward: its
        weights carry its dtype (an autocast around them ran a float32 path in bf16 while the raster recorded
        float32, and broke the int8 kernels)."""
        amp = self.amp if self.amp is not None else bf16_default(device)
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(amp))

    # -- features ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def features(
        self, x: Tensor, layers: str | int | Sequence[int] = "last", norm: bool = True
    ) -> tuple[list[Tensor], list[Tensor]]:
        """(patch maps [B, D, h, w], CLS tokens [B, D]) of the chosen blocks, float32; `x` already normalised."""
        self._check(x)
        idx = backbone_layer_indices(layers, self)  # a fixed depth (the colour baseline) is no short backbone
        if self.kind == "timm":
            check_timm_layers(self.model, idx, self.spec)
        if self.kind == "baseline":  # parameter-free statistics: computed where the input is, in float32
            return self.model.features(x.float(), idx)  # type: ignore[operator]  # the colour baseline's
        device = next(self.model.parameters()).device
        x = x.to(device=device, dtype=torch.float32)
        with self._autocast(device):
            if self.kind == "geodino":
                # a DinoVisionTransformer or FastViT, whose method nn.Module's __getattr__ types as Tensor | Module
                outs = self.model.get_intermediate_layers(  # type: ignore[operator]
                    x, n=idx, reshape=True, return_class_token=True, norm=norm
                )
                maps = [m.float() for m, _ in outs]
                cls = [c.float() for _, c in outs]
            else:
                maps, cls = timm_features(self.model, x, idx, norm)
        return maps, cls

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """CLS token of the last block [B, D] (input already normalised)."""
        return self.features(x, "last")[1][0]


def _tensor(x: Any, what: str) -> None:
    """A torch tensor, or one line that says how to make one (numpy arrays otherwise fail deep inside torch)."""
    if not isinstance(x, torch.Tensor):
        hint = " (torch.from_numpy(x))" if type(x).__module__ == "numpy" else ""
        raise InputError(f"{what} takes a torch.Tensor, got {type(x).__module__}.{type(x).__name__}{hint}")
