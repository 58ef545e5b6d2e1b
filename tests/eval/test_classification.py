"""Classification probes: DINO kNN voting, the batched SGD against torch.optim, metrics by hand, end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from geodino.errors import ConfigError, InputError
from geodino.eval.classification import ClassificationConfig, knn_scores, run_classification
from geodino.eval.datasets import DatasetConfig
from geodino.eval.features import FeatureConfig, FeatureSet
from geodino.eval.linear import LinearConfig, _train_heads, linear_probe
from geodino.eval.metrics import multilabel_metrics, single_label_metrics
from tests.eval.class_folder import class_folder
from tests.eval.tiny_backbone import TinyBackbone


def test_knn_votes_are_exp_sim_over_t_weighted():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    test = torch.tensor([[2.0, 0.0]])  # not unit length: kNN normalises
    v = knn_scores(train, labels, test, [2, 3], num_classes=2, temperature=0.07)
    e = lambda s: math.exp(s / 0.07)
    assert torch.allclose(v[2][0], torch.tensor([e(1.0), e(0.8)]), rtol=1e-5)
    assert torch.allclose(v[3][0], torch.tensor([e(1.0), e(0.8) + e(0.0)]), rtol=1e-5)
    # one very close neighbour outvotes two far ones (plain majority would pick class 1)
    train2 = torch.tensor([[1.0, 0.05], [0.5, 0.866], [0.5, -0.866]])
    v2 = knn_scores(train2, torch.tensor([0, 1, 1]), torch.tensor([[1.0, 0.0]]), [3], num_classes=2)
    assert int(v2[3].argmax()) == 0
    # multi-label: the weighted mean of the neighbours' label vectors
    ml = knn_scores(train, torch.tensor([[1.0, 0], [1, 1], [0, 1]]), test, [2], num_classes=2)
    w1, w2 = e(1.0), e(0.8)
    assert torch.allclose(ml[2][0], torch.tensor([1.0, w2 / (w1 + w2)]), rtol=1e-5)


def test_batched_sgd_equals_torch_optim_sgd_with_cosine():
    torch.manual_seed(0)
    x, y = torch.randn(40, 6), torch.randint(0, 3, (40,))
    cfg = LinearConfig(epochs=3, min_iterations=1, batch_size=16, momentum=0.9, scale_lr_with_batch=False)
    lr, wd = 0.3, 0.01
    w, b = _train_heads(x, y, torch.tensor([lr]), torch.tensor([wd]), 3, cfg, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    lin = nn.Linear(6, 3)
    with torch.no_grad():
        lin.weight.copy_((torch.randn(1, 6, 3, generator=g) * 0.01)[0].T)
        lin.bias.zero_()
    opt = torch.optim.SGD([{"params": [lin.weight], "weight_decay": wd}, {"params": [lin.bias], "weight_decay": 0.0}],
                          lr=lr, momentum=0.9)  # fmt: skip
    total, step = 9, 0
    for _ in range(3):
        perm = torch.randperm(40, generator=g)
        for s in range(3):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            idx = perm[s * 16 : (s + 1) * 16]
            opt.zero_grad()
            F.cross_entropy(lin(x[idx]), y[idx]).backward()
            opt.step()
            step += 1
    assert torch.allclose(w[0], lin.weight.detach().T, atol=1e-6)
    assert torch.allclose(b[0], lin.bias.detach(), atol=1e-6)


def _clusters(n: int, seed: int) -> FeatureSet:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.eye(3, 16) * 3
    cls = centers[y][:, None].expand(n, 4, 16) + torch.randn(n, 4, 16, generator=g)
    return FeatureSet(cls=cls, patch_mean=torch.randn(n, 4, 16, generator=g), targets=y, layers="four_last")


def test_linear_sweep_picks_the_best_head_on_val_and_generalises():
    train, val, test = _clusters(90, 0), _clusters(30, 1), _clusters(60, 2)
    cfg = LinearConfig(lrs=[1e-5, 1e-2, 0.1], weight_decays=[0.0], epochs=20, min_iterations=1, batch_size=32)
    head, rows = linear_probe(train, val, 3, cfg, seed=0, progress=False)
    assert len(rows) == 3 * 2 * 2  # lrs x {1,4} blocks x {no avgpool, avgpool}
    assert head.val_score == max(r["val"] for r in rows) and head.lr > 1e-5
    acc = float((head.logits(test).argmax(1) == test.targets).float().mean())
    assert acc > 0.9
    again, _ = linear_probe(train, val, 3, cfg, seed=0, progress=False)
    assert torch.equal(again.weight, head.weight)  # deterministic for a seed
    # standardised inputs: the head stores the train statistics and applies them at test time
    cfg.standardize = True
    std_head, _ = linear_probe(train, val, 3, cfg, seed=0, progress=False)
    x = train.linear_input(std_head.n_last_blocks, std_head.avgpool)
    assert torch.allclose(std_head.shift, x.mean(0)) and torch.allclose(std_head.scale, x.std(0))
    assert float((std_head.logits(test).argmax(1) == test.targets).float().mean()) > 0.9


def test_single_label_metrics_by_hand():
    scores = F.one_hot(torch.tensor([0, 1, 1, 2]), 3).float()
    m = single_label_metrics(scores, torch.tensor([0, 0, 1, 2]), 3)
    assert m["top1"] == pytest.approx(0.75)
    assert m["per_class_acc"] == [0.5, 1.0, 1.0]
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["balanced_acc"] == pytest.approx(2.5 / 3)
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_multilabel_map_and_f1_by_hand():
    scores = torch.tensor([[0.9, 0.2], [0.8, 0.6], [0.3, 0.7]])
    y = torch.tensor([[1, 0], [0, 1], [1, 0]])
    m = multilabel_metrics(scores, y)
    # class 0: ranks pos, neg, pos -> AP = (1 + 2/3) / 2; class 1: neg, pos -> AP = 1/2
    assert m["per_class_ap"] == pytest.approx([5 / 6, 0.5])
    assert m["mAP"] == pytest.approx((5 / 6 + 0.5) / 2)
    assert m["f1_micro"] == pytest.approx(4 / 7)  # TP 2, FP 2, FN 1


def test_multilabel_f1_of_linear_logits_that_all_lie_in_0_1_thresholds_their_sigmoid():
    """A linear head's logits are thresholded at sigmoid 0.5 (logit 0) even when every logit happens to lie in
    [0, 1]; guessing from the range read them as probabilities (logit 0.3 = probability 0.57 called negative)."""
    logits = torch.tensor([[0.3, 0.1], [0.2, 0.9], [0.45, 0.05]])
    y = torch.tensor([[1, 0], [1, 1], [0, 1]])
    m = multilabel_metrics(logits, y, logits=True)
    # every sigmoid is > 0.5: all 6 predicted positive, TP 4, FP 2, FN 0 -> F1 = 8 / 10
    assert m["f1_micro"] == pytest.approx(0.8)
    assert m["f1_macro"] == pytest.approx((4 / 5 + 4 / 5) / 2)  # each class: TP 2, FP 1
    assert m["mAP"] == pytest.approx(multilabel_metrics(torch.sigmoid(logits), y, logits=False)["mAP"])
    assert multilabel_metrics(logits, y)["f1_micro"] == pytest.approx(2 / 5)  # the guess: only 0.9 is positive


def test_run_classification_end_to_end_on_a_class_folder(tmp_path):
    class_folder(tmp_path / "data")
    cfg = ClassificationConfig(
        data=DatasetConfig(name="image_folder", root=str(tmp_path / "data"), val_fraction=0.25, test_fraction=0.25),
        features=FeatureConfig(cache_dir=str(tmp_path / "cache"), batch_size=8),
        linear=LinearConfig(lrs=[0.01, 0.1], weight_decays=[0.0], epochs=10, min_iterations=1),
        progress=False,
    )
    cfg.logreg.enabled = True
    cfg.logreg.cs = [0.1, 1.0]
    cfg.knn.ks = [1, 3]
    bb = TinyBackbone(spec="tiny")
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    m = run_classification(bb, cfg, tmp_path / "out")
    assert all(torch.equal(before[k], v) for k, v in bb.state_dict().items())  # the backbone stays frozen
    assert not bb.training
    assert m["knn_top1@k1"] == 1.0 and m["linear_top1"] == 1.0 and m["logreg_top1"] == 1.0
    assert {"knn_top1@k3", "knn_macro_f1", "linear_macro_f1", "linear_balanced_acc"} <= set(m)
    details = json.loads((tmp_path / "out" / "classification.json").read_text())
    assert details["classes"] == ["bright", "dark"] and details["n_eval"] == 4
    assert details["linear"]["lr"] in (0.01, 0.1) and len(details["linear"]["sweep"]) == 2 * 2 * 2
    assert (tmp_path / "out" / "confusion_linear.png").stat().st_size > 1000
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 3
    # splits.json lists each split's files (relative to the root): disjoint, all 16 files, stratified 4/2/2 per
    # class (val 0.25, test 0.25 of 8), and the evaluated split is the n_eval files
    saved = json.loads((tmp_path / "out" / "splits.json").read_text())
    assert saved["root"] == str((tmp_path / "data").resolve())
    splits = saved["splits"]
    assert sorted(splits) == ["test", "train", "val"] and len(splits["test"]) == details["n_eval"]
    every = [f for names in splits.values() for f in names]
    assert sorted(every) == sorted(f"{c}/{i}.png" for c in ("dark", "bright") for i in range(8))
    for names in splits.values():
        assert sum(f.startswith("dark/") for f in names) == len(names) // 2
    run_classification(bb, cfg, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "splits.json").read_text())["splits"] == splits  # seeded


def test_run_classification_multilabel_bigearthnet_layout(tmp_path, bigearthnet_cfg):
    m = run_classification(TinyBackbone(in_chans=12, spec="tiny"), bigearthnet_cfg, tmp_path / "out")
    assert set(m) >= {"knn_mAP@k2", "knn_mAP", "linear_mAP", "linear_f1_micro", "linear_mAP_micro"}
    assert all(0.0 <= v <= 1.0 for v in m.values())


def test_class_and_count_mismatches_are_one_line(tmp_path):
    class_folder(tmp_path / "d" / "train")
    class_folder(tmp_path / "d" / "val", classes=("dark", "cloud"), n=2)
    cfg = ClassificationConfig(data=DatasetConfig(name="image_folder", root=str(tmp_path / "d")), progress=False)
    with pytest.raises(InputError, match=r"class 'cloud' in .*val has no training images"):
        run_classification(TinyBackbone(spec="tiny"), cfg, tmp_path / "out")
    class_folder(tmp_path / "e")
    cfg = ClassificationConfig(data=DatasetConfig(name="image_folder", root=str(tmp_path / "e"), num_classes=10))
    with pytest.raises(ConfigError, match=r"num_classes=10 but image_folder in .* has 2 classes"):
        run_classification(TinyBackbone(spec="tiny"), cfg, tmp_path / "out")
    with pytest.raises(InputError, match="backbone tiny takes 4 bands but image_folder has 3"):
        run_classification(TinyBackbone(in_chans=4, spec="tiny"), ClassificationConfig(data=DatasetConfig(
            name="image_folder", root=str(tmp_path / "e")), progress=False), tmp_path / "out")  # fmt: skip


def test_knn_k_values_above_the_training_set_are_skipped_not_mislabelled(tmp_path):
    """ks=[1, 3, 500] on 8 training images: k=500 would vote with all 8 and be reported as `@k500`."""
    class_folder(tmp_path / "data")
    cfg = ClassificationConfig(
        data=DatasetConfig(name="image_folder", root=str(tmp_path / "data"), val_fraction=0.25, test_fraction=0.25),
        features=FeatureConfig(cache=False, batch_size=8),
        progress=False,
        plots=False,
    )
    cfg.linear.enabled = False
    cfg.knn.ks = [1, 3, 500]
    with pytest.warns(UserWarning, match=r"kNN: k=500 is more than the 8 training images of image_folder; skipped"):
        m = run_classification(TinyBackbone(spec="tiny"), cfg, tmp_path / "out")
    assert {"knn_top1@k1", "knn_top1@k3"} <= set(m) and not any("k500" in key for key in m)
    assert json.loads((tmp_path / "out" / "classification.json").read_text())["knn"]["skipped_ks"] == [500]
    # every k too large: k = the training set size, named as such
    cfg.knn.ks = [100, 200]
    with pytest.warns(UserWarning, match=r"k=100, 200 are more than the 8 training images .* reporting k=8"):
        m = run_classification(TinyBackbone(spec="tiny"), cfg, tmp_path / "out2")
    assert [key for key in m if "@k" in key] == ["knn_top1@k8"]


def test_knn_at_k_does_not_depend_on_the_other_k_values_when_similarities_tie():
    """A random ViT's CLS tokens tie by the dozen (15 distinct similarities over 120 EuroSAT images): kNN@20
    read 0.300 with ks=[10, 20, 100, 200] and 0.275 with ks=[10, 20, 100]. Ties now go to the lower index."""
    g = torch.Generator().manual_seed(0)
    dirs = torch.tensor([[1.0, 0.0], [1.0, 0.001], [1.0, 0.002], [1.0, 0.003]])
    train = dirs[torch.randint(0, 4, (120,), generator=g)]
    labels = torch.randint(0, 5, (120,), generator=g)
    test = torch.tensor([[1.0, 0.0], [1.0, 0.002]])
    wide = knn_scores(train, labels, test, [10, 20, 100, 120], num_classes=5)
    for ks in ([10, 20], [20], [10]):
        narrow = knn_scores(train, labels, test, ks, num_classes=5)
        assert all(torch.equal(narrow[k], wide[k]) for k in ks)
    # the reference: neighbours in (similarity desc, training index asc) order
    sim = F.normalize(test, dim=1) @ F.normalize(train, dim=1).T
    order = torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :20]
    expected = (torch.exp(sim.gather(1, order) / 0.07)[..., None] * F.one_hot(labels[order], 5)).sum(1)
    assert torch.allclose(wide[20], expected)


def test_a_dataset_rewritten_in_place_gets_a_new_cache_key(tmp_path):
    """Overwriting a class's images under the same names served the old cached features (the key named the
    folder, split and count only)."""
    import os

    from geodino.eval.datasets import build_dataset

    class_folder(tmp_path / "data")
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path / "data"))
    before = build_dataset(cfg, "train")
    assert before.subset([0, 1]).key.endswith(before.stamp)  # subsets share the dataset's stamp
    img = tmp_path / "data" / "bright" / "0.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(img)
    os.utime(img, ns=(os.stat(img).st_atime_ns, os.stat(img).st_mtime_ns + 1_000_000))
    after = build_dataset(cfg, "train")
    assert after.key != before.key and after.key.split("|")[:6] == before.key.split("|")[:6]


def test_eval_split_val_never_scores_a_head_refit_on_val(tmp_path):
    """eval_split=val (data without a test split): a head refit on train + val would be scored on its own training
    images. Noise images with arbitrary labels: refit heads memorised val (top-1 1.0 on the old code); the reported
    number must be the val score of the head trained on train alone (the one the sweep chose it by)."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3)).astype(np.uint8)).save(tmp_path / "d" / c / f"{i}.png")
    cfg = ClassificationConfig(
        data=DatasetConfig(name="image_folder", root=str(tmp_path / "d"), val_fraction=0.3, test_fraction=0.3),
        features=FeatureConfig(cache=False, batch_size=8),
        linear=LinearConfig(lrs=[0.1], weight_decays=[0.0], refit_on_trainval=True, min_iterations=300),
        eval_split="val",
        progress=False,
        plots=False,
    )
    cfg.knn.enabled = False
    cfg.logreg.enabled = True  # refit_on_trainval defaults to true for logreg
    cfg.logreg.cs = [1e3]
    with pytest.warns(UserWarning, match="eval_split=val, so linear and logreg are not refit"):
        m = run_classification(TinyBackbone(dim=96, spec="tiny96"), cfg, tmp_path / "out")
    details = json.loads((tmp_path / "out" / "classification.json").read_text())
    assert details["n_eval"] == details["n_val"] == 12
    assert m["linear_top1"] == pytest.approx(details["linear"]["val_score"])
    assert m["logreg_top1"] == pytest.approx(details["logreg"]["val"])
    assert m["linear_top1"] < 0.9 and m["logreg_top1"] < 0.9  # noise labels: no memorised val
    assert details["linear"]["refit_on_trainval"] is False and details["logreg"]["refit_on_trainval"] is False
