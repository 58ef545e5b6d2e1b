"""The kNN classification probe as DINO's `eval_knn.py`: its config, the weighted votes of the k nearest training
images (cosine similarity, weight exp(sim / T), ties broken by training index) and the per-k scoring of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from geodino.errors import ConfigError, InputError
from geodino.eval.metrics import multilabel_metrics

if TYPE_CHECKING:
    from geodino.eval.classification_report import ClassificationReport
    from geodino.eval.features import FeatureSet


@dataclass
class KNNConfig:
    enabled: bool = True
    ks: list[int] = field(default_factory=lambda: [10, 20, 100, 200])
    temperature: float = 0.07
    chunk_size: int = 1024  # memory bound: a similarity block holds chunk x n_train float32s' worth (as float64)

    def __post_init__(self) -> None:  # 0 divided the similarities by zero, a negative one inverted the votes: both ran
        if not (np.isfinite(float(self.temperature)) and float(self.temperature) > 0):
            raise ConfigError(f"knn.temperature={self.temperature} must be a positive number, e.g. 0.07")
        if self.enabled and (not list(self.ks) or min(self.ks) < 1):  # was refused only after feature extraction
            raise ConfigError(f"knn.ks={list(self.ks)} must list positive k values, e.g. [10, 20]")
        if int(self.chunk_size) < 1:  # ran one test image per block, without a word
            raise ConfigError(f"knn.chunk_size={self.chunk_size} must be >= 1 (the memory bound, e.g. 1024)")


@torch.no_grad()
def knn_scores(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    ks: list[int],
    *,
    num_classes: int,
    temperature: float = 0.07,
    chunk_size: int = 1024,
    out_dtype: torch.dtype = torch.float32,
) -> dict[int, torch.Tensor]:
    """Weighted kNN votes [N_test, K] for each k, as DINO: cosine similarity, top-k neighbours, weight exp(sim/T).

    `train_y` is [N] class ids (votes sum one-hot labels) or [N, K] multi-hot (scores are the weighted mean of
    the neighbours' label vectors, a per-class probability for mAP).

    Similarities, weights and votes are computed in float64, returned as `out_dtype` (the probe takes float64):
    features sharing a large common part (a random or barely trained ViT's CLS tokens) have cosines within 1e-8
    of 1, which float32 (eps 6e-8) rounds to ties, and kNN then voted by training order (top-1 0.20 where float64
    neighbours give 0.60, 5 EuroSAT classes); float32 votes of such neighbours can tie again. Blocks hold
    `chunk_size // 2` test images, the memory of `chunk_size` float32 rows.
    """
    if train_x.shape[0] == 0:
        raise InputError("kNN needs training features; the training split is empty")
    multilabel = train_y.dim() == 2
    tr = F.normalize(train_x.double(), dim=1)
    te = F.normalize(test_x.double(), dim=1)
    k_max = min(max(ks), tr.shape[0])
    y1h = train_y.double() if multilabel else F.one_hot(train_y.long(), num_classes).double()
    out: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    rows = max(1, chunk_size // 2)
    for start in range(0, te.shape[0], rows):
        sim = te[start : start + rows] @ tr.T
        top_sim, top_idx = nearest(sim, k_max)  # sorted, largest first, ties by training index
        weights = (top_sim / temperature).exp()
        neigh = y1h[top_idx]  # [B, k_max, K]
        for k in ks:
            kk = min(k, k_max)
            votes = (weights[:, :kk, None] * neigh[:, :kk]).sum(1)
            if multilabel:
                votes = votes / weights[:, :kk].sum(1, keepdim=True)
            out[k].append(votes)
    return {k: torch.cat(v).to(out_dtype) for k, v in out.items()}


def nearest(sim: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest similarities per row and their columns, largest first; equal similarities are taken and
    ordered by lower column (training index). So the k nearest are always the first k of the k' > k nearest: a
    kNN score at k does not depend on the other k values asked for. (`topk` alone picks among ties as it likes,
    and near-constant features, such as a random ViT's CLS tokens, tie by the dozen.)"""
    bound = sim.topk(k, dim=1).values[:, -1:]  # the k-th largest value of each row
    above, tied = sim > bound, sim == bound
    need = k - above.sum(1, keepdim=True)  # how many of the tied columns to take
    chosen = above | tied
    rows = (tied.sum(1, keepdim=True) > need).squeeze(1).nonzero().squeeze(1)  # rows with more ties than room
    if rows.numel():
        t = tied[rows]
        chosen[rows] = above[rows] | (t & (t.cumsum(1) <= need[rows]))
    idx = chosen.nonzero()[:, 1].view(sim.shape[0], k)  # ascending columns per row
    vals = sim.gather(1, idx)
    order = vals.argsort(dim=1, descending=True, stable=True)
    return vals.gather(1, order), idx.gather(1, order)


def knn_heads(ftr: FeatureSet, fte: FeatureSet, k: int, cfg: KNNConfig, report: ClassificationReport) -> None:
    """kNN at every k of the config (top-1 or mAP per k); the full report for k = 20 (or the smallest k).

    A k above the number of training images would vote with all of them and be labelled with a k it never used:
    such k values are skipped with one warning (when every k is too large, k = the number of training images is
    used and named as such), so each `@k<k>` row holds what that k gives."""
    ks = sorted(set(cfg.ks))  # non-empty and positive (KNNConfig)
    n_bank = int(ftr.cls.shape[0])
    too_big = [kk for kk in ks if kk > n_bank]
    if too_big and n_bank > 0:
        import warnings

        ks = [kk for kk in ks if kk <= n_bank] or [n_bank]
        warnings.warn(
            f"kNN: k={', '.join(map(str, too_big))} {'is' if len(too_big) == 1 else 'are'} more than the {n_bank} "
            f"training images of {report.train_ds.name}; skipped, reporting k={', '.join(map(str, ks))} "
            "(knn.ks sets the k values)",
            stacklevel=2,
        )
    votes = knn_scores(
        ftr.cls[:, -1],
        ftr.targets,
        fte.cls[:, -1],
        ks,
        num_classes=k,
        temperature=cfg.temperature,
        chunk_size=cfg.chunk_size,
        out_dtype=torch.float64,  # near-equal votes stay apart for the argmax
    )
    for kk in ks:
        if report.multilabel:
            m = multilabel_metrics(votes[kk], fte.targets, logits=False)
            report.metrics[f"knn_mAP@k{kk}"] = m["mAP"]
            report.metrics[f"knn_f1_micro@k{kk}"] = m["f1_micro"]
        else:
            pred = votes[kk].argmax(1)
            report.metrics[f"knn_top1@k{kk}"] = float((pred == fte.targets).float().mean())
    headline = 20 if 20 in ks else ks[0]
    report.score("knn", votes[headline])
    report.details["knn"]["k"] = headline
    report.details["knn"]["skipped_ks"] = too_big  # larger than the training set
