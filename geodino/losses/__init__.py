"""Losses of the DINOv3 recipe (pure torch): DINO, iBOT, KoLeo, Gram anchoring and Sinkhorn-Knopp targets."""

from geodino.losses.dino import DINOLoss, MeanCentering
from geodino.losses.gram import GramLoss, gram_matrix
from geodino.losses.ibot import IBOTPatchLoss, masks_weight_from_masks
from geodino.losses.koleo import KoLeoLoss, KoLeoLossDistributed
from geodino.losses.sinkhorn import sinkhorn_knopp

__all__ = [
    "DINOLoss",
    "GramLoss",
    "IBOTPatchLoss",
    "KoLeoLoss",
    "KoLeoLossDistributed",
    "MeanCentering",
    "gram_matrix",
    "masks_weight_from_masks",
    "sinkhorn_knopp",
]
