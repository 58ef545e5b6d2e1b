"""A datacube's per-band variables (B02, B03, ... each a (time?, y, x) array) as one lazy (band, time?, y, x) array.

xarray's `Dataset.to_dataarray` stacks variables by reading them whole (it concatenates their values), so opening a
store of per-band variables read every pixel of it into memory: a many-scene `geodino embed` read each store in
its header check and again for its run, and a training source read each store at open. `stack_variables` stacks
them lazily instead: a window read from the stack reads that window of each variable it selects, as a window of a
store with a band dimension is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["stack_variables"]


def stack_variables(ds: Any, names: Sequence[str], dim: str = "band") -> Any:
    """The variables `names` of Dataset `ds` stacked along a new first dimension `dim` (its coordinate: the names),
    as `ds[names].to_dataarray(dim=dim, name=None)` gives them (the dataset's coordinates and attributes), but lazy.
    Variables of different dims or shapes (which `to_dataarray` broadcasts) are stacked by it, eagerly."""
    import xarray as xr
    from xarray.core import indexing

    sub = ds[list(names)]
    first = sub[names[0]].variable
    if any(sub[n].dims != first.dims or sub[n].shape != first.shape for n in names):
        return sub.to_dataarray(dim=dim, name=None)
    stacked = globals().get("_StackedBands") or __getattr__("_StackedBands")  # one class per process
    data = indexing.LazilyIndexedArray(stacked([sub[n].variable for n in names]))
    coords = {k: v.variable for k, v in sub.coords.items()}
    coords[dim] = xr.Variable(dim, np.asarray(list(names), dtype=object))
    return xr.DataArray(xr.Variable((dim, *first.dims), data), coords=coords, attrs=dict(sub.attrs), name=None)


def __getattr__(name: str) -> Any:
    """`_StackedBands`, made on first use (PEP 562): it subclasses xarray's BackendArray, and xarray is imported
    only when a cube is opened. Named at module level, so a stacked cube pickles as the store's own arrays do (a
    spawned worker, a DataLoader): pickle finds the class here by name."""
    if name != "_StackedBands":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class _StackedBands(BackendArray):
        """Variables of one shape read as one array, band first: each read reads the selected window of the
        selected variables only (xarray's backend-array protocol: outer indexing, the rest done by xarray)."""

        def __init__(self, variables: list[Any]) -> None:
            self.variables = variables
            self.shape = (len(variables), *variables[0].shape)
            self.dtype = np.result_type(*(v.dtype for v in variables))

        def __getitem__(self, key: Any) -> np.ndarray:
            return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

        def _read(self, key: tuple) -> np.ndarray:
            picked = np.arange(len(self.variables))[key[0]]
            rest = tuple(key[1:])
            read = np.atleast_1d(picked)
            planes = [np.asarray(self.variables[int(i)][rest].values, dtype=self.dtype) for i in read]
            if np.ndim(picked) == 0:
                return planes[0]
            if not planes:  # no band selected: the window's shape, nothing read
                return np.empty((0, *self.variables[0][rest].shape), dtype=self.dtype)
            return np.stack(planes)

    _StackedBands.__module__, _StackedBands.__qualname__ = __name__, "_StackedBands"
    globals()["_StackedBands"] = _StackedBands
    return _StackedBands
