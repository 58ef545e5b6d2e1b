"""Building blocks of the DINOv3 ViT, one concept per file, with the official parameter names.

patch_embed: conv patchifier; rope: axial RoPE with train-time coordinate augmentation; attention: fused-qkv
SDPA attention with the masked key bias; ffn: MLP and SwiGLU; block: pre-norm block with LayerScale and
batch-subset drop path over a list of crop groups; norm: the official norm-layer names.
"""

from geodino.models.layers.attention import LinearKMaskedBias, SelfAttention
from geodino.models.layers.block import LayerScale, SelfAttentionBlock
from geodino.models.layers.ffn import FFN_LAYERS, Mlp, SwiGLUFFN, swiglu_hidden_dim
from geodino.models.layers.norm import NORM_LAYERS, RMSNorm, make_norm
from geodino.models.layers.patch_embed import PatchEmbed
from geodino.models.layers.rope import RopePositionEmbedding, rope_apply, rope_rotate_half

__all__ = [
    "FFN_LAYERS",
    "NORM_LAYERS",
    "LayerScale",
    "LinearKMaskedBias",
    "Mlp",
    "PatchEmbed",
    "RMSNorm",
    "RopePositionEmbedding",
    "SelfAttention",
    "SelfAttentionBlock",
    "SwiGLUFFN",
    "make_norm",
    "rope_apply",
    "rope_rotate_half",
    "swiglu_hidden_dim",
]
