"""geodino inside the tools users already run (see docs/integrations.md).

- timm and torchgeo need no code here: `geodino convert BACKBONE out_dir --to timm` writes a timm folder that
  `timm.create_model("local-dir:out_dir", pretrained=True)` loads with its `pretrained_cfg` (mean/std), and
  torchgeo's trainers take it by name (`ClassificationTask(model="local-dir:out_dir", weights=True)`,
  `SemanticSegmentationTask(model="dpt", backbone="tu-local-dir:out_dir", weights=True)`).
- Hugging Face: `geodino convert BACKBONE out_dir --to hf` (`AutoModel` + `AutoImageProcessor`).
- TerraTorch: `geodino.integrations.terratorch` registers `geodino_vit` in TerraTorch's backbone registry.
"""
