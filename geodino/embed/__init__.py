"""Feature rasters for GIS: streaming, seam-free, resumable COG/GeoZarr embeddings and the products on them.

`embed_raster(input, backbone, out, **options)` is `geodino embed` of one raster, `embed_scenes(inputs, config)`
of many (a folder, glob, list or STAC JSON: one feature raster per scene and a VRT mosaic); the products
(`pca_map`, `cluster_map`, `similarity_map`, `zonal_embeddings`, `classify_map`, `change_map`) are
`geodino embed pca|cluster|similar|zonal|classify|change`; `embed_images(folder, backbone, out)` is `geodino embed
images` (one vector per image file, GeoParquet). Imports are lazy so
`import geodino.embed` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EmbedConfig",
    "change_map",
    "classify_map",
    "cluster_map",
    "embed_images",
    "embed_raster",
    "embed_scenes",
    "pca_map",
    "similarity_map",
    "zonal_embeddings",
]


def __getattr__(name: str) -> Any:
    """The public names of `__all__`, each imported from its module on first use."""
    if name in ("embed_raster", "EmbedConfig"):
        from geodino.embed import pipeline

        return getattr(pipeline, name)
    if name == "embed_scenes":
        from geodino.embed.scenes import embed_scenes

        return embed_scenes
    if name in ("pca_map", "cluster_map", "similarity_map", "zonal_embeddings"):
        from geodino.embed import products

        return getattr(products, name)
    if name == "classify_map":
        from geodino.embed.classify import classify_map

        return classify_map
    if name == "embed_images":
        from geodino.embed.images import embed_images

        return embed_images
    if name == "change_map":
        from geodino.embed.change import change_map

        return change_map
    raise AttributeError(f"module 'geodino.embed' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names plus the lazily imported ones of `__all__`, so `dir()` and tab completion list them."""
    return sorted(set(globals()) | set(__all__))
