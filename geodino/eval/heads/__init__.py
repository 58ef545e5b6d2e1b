"""Light heads trained on a frozen ViT: linear and UPerNet/DPT for dense maps, a simple feature pyramid for
detection. Pure torch: every head takes the backbone's patch maps (list of [B,D,h,w]) and CLS tokens."""

from geodino.eval.heads.dpt import DPTHead
from geodino.eval.heads.linear import LinearHead
from geodino.eval.heads.pyramid import LayerNorm2d, SimpleFeaturePyramid
from geodino.eval.heads.upernet import Feature2Pyramid, UPerNetHead

__all__ = ["DPTHead", "Feature2Pyramid", "LayerNorm2d", "LinearHead", "SimpleFeaturePyramid", "UPerNetHead"]
