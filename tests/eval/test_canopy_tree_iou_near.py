"""tree_IoU that nearly every (or nearly no) predicted tree pixel leaves unable to rank backbones: warned in one line,
as the exact all/none cases are (99.8 % of the pixels predicted trees kept tree_IoU within 0.002 of the reference's
cover fraction, unwarned)."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.eval.canopy import warn_degenerate_tree_iou
from geodino.eval.metrics import RegressionMeter, tree_cover, tree_iou_room


def _meter(pred_trees: int, ref_trees: int, n: int = 1000, overlap: int | None = None) -> RegressionMeter:
    """n pixels: the first `ref_trees` reference pixels are trees (5 m, others 0 m); `pred_trees` predicted trees
    (7 m, others 1 m) start at `n - overlap - ...` so that `overlap` of them (default as many as fit) are on
    reference trees."""
    y = torch.zeros(1, n, dtype=torch.float64)
    y[0, :ref_trees] = 5.0
    pred = torch.ones(1, n, dtype=torch.float64)
    both = min(pred_trees, ref_trees) if overlap is None else overlap
    start = ref_trees - both
    pred[0, start : start + pred_trees] = 7.0
    meter = RegressionMeter(tree_threshold=2.0)
    meter.update(pred, y)
    return meter


def test_nearly_every_predicted_pixel_a_tree_warns_with_share_room_and_reference_cover():
    meter = _meter(pred_trees=998, ref_trees=400)
    iou, cover = meter.compute()["tree_IoU"], meter.tree_cover()
    assert abs(iou - 0.4) <= 0.002  # within the room of the all-trees value, whatever the 2 other pixels are
    with pytest.warns(UserWarning) as caught:
        assert warn_degenerate_tree_iou(iou, cover, 2.0)
    assert [str(w.message) for w in caught] == [
        f"canopy probe: 99.8% of predicted pixels are >= tree_threshold=2 m, so tree_IoU={iou:.4g} is within 0.002 "
        "of the reference's tree-cover fraction (0.4), the IoU of trees everywhere, whatever the backbone "
        "(tree_IoU_degenerate in canopy_metrics.json); compare backbones by MAE, RMSE and R2, or check the head "
        "(min_height, epochs)"
    ]


def test_nearly_no_predicted_tree_warns_against_a_dense_reference_but_not_a_sparse_one():
    dense = _meter(pred_trees=2, ref_trees=400)
    with pytest.warns(UserWarning, match=r"only 0\.2% of predicted pixels are >= tree_threshold=2 m \(reference "):
        assert warn_degenerate_tree_iou(dense.compute()["tree_IoU"], dense.tree_cover(), 2.0)
    # 2 predicted trees on a plot of 3: a sparse stand found, tree_IoU 2/3 means something
    sparse = _meter(pred_trees=2, ref_trees=3)
    assert sparse.compute()["tree_IoU"] == pytest.approx(2 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_degenerate_tree_iou(sparse.compute()["tree_IoU"], sparse.tree_cover(), 2.0)
        ninety_five = _meter(pred_trees=950, ref_trees=400)  # may sit 0.05 from the constant's IoU: it ranks
        assert not warn_degenerate_tree_iou(ninety_five.compute()["tree_IoU"], ninety_five.tree_cover(), 2.0)


def test_a_reference_without_trees_warns_since_tree_iou_is_zero_whatever_is_predicted():
    meter = _meter(pred_trees=300, ref_trees=0, overlap=0)
    assert meter.compute()["tree_IoU"] == 0.0
    with pytest.warns(UserWarning, match=r"no reference pixel is >= tree_threshold=2 m, so tree_IoU is 0 \(30% of"):
        assert warn_degenerate_tree_iou(0.0, meter.tree_cover(), 2.0)


def test_the_room_bounds_how_far_any_mask_moves_tree_iou_from_the_nearer_constant_mask():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        n = 50
        y = (torch.rand(n, generator=g) < torch.rand(1, generator=g)).double() * 5
        pred = (torch.rand(n, generator=g) < torch.rand(1, generator=g)).double() * 5
        tp, tt = pred >= 2, y >= 2
        if not (tp | tt).any():
            continue
        iou = int((tp & tt).sum()) / int((tp | tt).sum())
        cover = tree_cover(pred, y)
        room = tree_iou_room(cover)
        assert min(abs(iou - cover["tree_cover_ref"]), abs(iou)) <= room + 1e-12
