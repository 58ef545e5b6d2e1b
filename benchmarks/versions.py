"""Versions of the packages a benchmark compares, for the first line of its output (a helper, not a benchmark).

A ratio against a peer means little without the peer's version: `transformers` 4.x and 5.x run different DINOv3
code, `timm` changed its Eva attention, `torchgeo` 0.7 and 0.8 query rasters differently. Each speed benchmark
prints `versions("torch", "<peer>", ...)` before its table. Read from the installed distributions' metadata, so
naming a package imports nothing; one that is not installed reads "not installed".

    .venv/bin/python benchmarks/versions.py            # prints the versions of every peer the benchmarks name
"""

from __future__ import annotations

import importlib.metadata

PEERS = ("torch", "transformers", "timm", "lightly", "torchgeo", "rasterio", "onnxruntime", "lightly-train")


def version_of(name: str) -> str:
    """The installed version of distribution `name`, or "not installed"."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions(*names: str) -> str:
    """ "torch 2.14.1, transformers 5.25.0, ...": `name version` for each of `names`, in order."""
    return ", ".join(f"{n} {version_of(n)}" for n in names)


if __name__ == "__main__":
    print(versions("geodino", *PEERS))
