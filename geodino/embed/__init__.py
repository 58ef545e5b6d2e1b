"""Feature rasters for GIS: streaming, seam-free, resumable COG/GeoZarr embeddings and the products on them.

`embed_raster(input, backbone, out, **options)` is `geodino embed` of one raster, `embed_scenes(inputs, config)`
of many (a folder, glob, list or STAC JSON: one feature raster per scene and a VRT mosaic); the products
(`pca_map`, `cluster_map`, `similarity_map`, `zonal_embeddings`, `classify_map`, `change_map`) are
`geodino embed pca|cluster|similar|zonal|classify|change`; `embed_images(folder, backbone, out)` is `geodino embed
images` (one vector per image file, GeoParquet). Imports are lazy so
`import geodino.embed` stays cheap.
"""

from __future__ import annotations

from geodino.lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "embed_raster": "geodino.embed.pipeline",
        "EmbedConfig": "geodino.embed.pipeline",
        "embed_scenes": "geodino.embed.scenes",
        "pca_map": "geodino.embed.products",
        "cluster_map": "geodino.embed.products",
        "similarity_map": "geodino.embed.products",
        "zonal_embeddings": "geodino.embed.products",
        "classify_map": "geodino.embed.classify",
        "embed_images": "geodino.embed.images",
        "change_map": "geodino.embed.change",
    },
)
