"""Data: sensors, raster archives, datacubes, web images, multi-crop, iBOT masks, mixing and loaders.

Modules (imported on use; `import geodino.data` stays cheap):
- `sensors`  band names, DN scale and per-band statistics; user sensors in YAML (`geodino data stats`)
- `rasters`  GeoTIFF/COG/VRT archives indexed once, boundless windows, nodata -> `valid`, `RasterSource`
- `tiling`   random/grid tiles in pixels or metres, ROI polygons
- `cubes`    Zarr v2/v3 and NetCDF datacubes, (band,y,x) or (time,band,y,x)
- `images`   image folders and webdataset-style tar shards
- `crops`    `CropsConfig`, `MultiCropTransform` (overhead augmentations, Gram crops, crop sets)
- `masking`  the official iBOT block-mask generator; `collate` the SSL batch collation
- `mixing`   homogeneous-batch source mixing; `loaders` `DataConfig`, `build_ssl_loader`, `build_sample_loader`
- `stats`    streaming per-band statistics; `preview` PNG previews; `commands` the `geodino data` CLI
"""
