"""Feature rasters for GIS: streaming, seam-free, resumable COG/GeoZarr embeddings and the products on them.

`embed_raster(input, backbone, out, **options)` is `geodino embed`; the products (`pca_map`, `cluster_map`,
`similarity_map`, `zonal_embeddings`) are `geodino embed pca|cluster|similar|zonal`. Imports are lazy so
`import geodino.embed` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EmbedConfig", "cluster_map", "embed_raster", "pca_map", "similarity_map", "zonal_embeddings"]


def __getattr__(name: str) -> Any:
    if name in ("embed_raster", "EmbedConfig"):
        from geodino.embed import pipeline

        return getattr(pipeline, name)
    if name in ("pca_map", "cluster_map", "similarity_map", "zonal_embeddings"):
        from geodino.embed import products

        return getattr(products, name)
    raise AttributeError(name)
