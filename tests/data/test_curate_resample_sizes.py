"""`--resample-size`: one size for every k-means level, or one per level (finest first) where a size <= 1 skips
resampling at that level (ssl-data-curation's per-level sample sizes); a list of the wrong length is refused."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.curate import CurateConfig, cluster
from geodino.data.curate.cluster import hierarchical_kmeans
from geodino.errors import ConfigError


def _points(n: int = 400, d: int = 8) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)


def test_per_level_sizes_resample_each_level_with_its_size_and_skip_at_one(monkeypatch):
    calls: list[tuple[int, int]] = []
    real = cluster._kmeans

    def spy(items: np.ndarray, k: int, seed: int):
        calls.append((items.shape[0], int(k)))
        return real(items, k, seed)

    monkeypatch.setattr(cluster, "_kmeans", spy)
    levels = hierarchical_kmeans(_points(), [20, 5, 2], resamples=2, resample_size=[6, 1, 0], seed=0)
    # level 1: the fit on 400 points, then two re-fits on <= 6 points of each of 20 centroids; levels 2 and 3
    # (sizes 1 and 0) are fitted once, without resampling
    assert [k for _, k in calls] == [20, 20, 20, 5, 2]
    assert calls[0][0] == 400 and all(n <= 6 * 20 for n, _ in calls[1:3])
    assert calls[3][0] == 20 and calls[4][0] == 5
    assert [lv["centroids"].shape[0] for lv in levels] == [20, 5, 2]


def test_one_size_is_the_same_as_that_size_at_every_level():
    x = _points()
    one = hierarchical_kmeans(x, [12, 4], resamples=1, resample_size=5, seed=3)
    each = hierarchical_kmeans(x, [12, 4], resamples=1, resample_size=[5, 5], seed=3)
    for a, b in zip(one, each):
        np.testing.assert_array_equal(a["centroids"], b["centroids"])
        np.testing.assert_array_equal(a["assign"], b["assign"])


def test_a_list_of_the_wrong_length_is_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        hierarchical_kmeans(_points(), [12, 4], resamples=1, resample_size=[5, 5, 5])
    assert "\n" not in str(err.value) and "one per level (2 for --clusters of 2 levels), not 3" in str(err.value)
    base = dict(paths=["x"], backbone="arch:vit_tiny", size=1, clusters=[8, 4, 2], resamples=1)
    with pytest.raises(ConfigError, match=r"^--resample-size 5 5 \(resample_size= in Python\): give one size for"):
        CurateConfig(**base, resample_size=[5, 5]).validate()
    with pytest.raises(ConfigError, match=r"^--resample-size 5 -1 5 \(resample_size= in Python\) is out of range"):
        CurateConfig(**base, resample_size=[5, -1, 5]).validate()
    CurateConfig(**base, resample_size=[5, 1, 0]).validate()


def test_cli_takes_one_size_or_one_per_level():
    from geodino.cli import build_parser, command_parser

    def parsed(*extra: str) -> CurateConfig:
        argv = ["data", "curate", "x", "-b", "arch:vit_tiny", "-o", "o", "--size", "1", *extra]
        parser = build_parser("data")
        args = command_parser(parser, parser.parse_known_args(argv)[0]).parse_args(argv[2:])
        keys = CurateConfig.__dataclass_fields__
        return CurateConfig(**{k: v for k, v in vars(args).items() if k in keys})

    assert parsed().resample_size == 10
    assert parsed("--resample-size", "7").resample_size == 7
    cfg = parsed("--clusters", "8", "4", "--resample-size", "7", "1")
    assert cfg.resample_size == [7, 1]
    cfg.validate()


def test_one_size_of_one_skips_resampling_as_the_same_size_per_level_does():
    """A size <= 1 skips resampling whether it is given once or per level (one rule, as ssl-data-curation)."""
    assert cluster.per_level_sizes(1, 3) == [None, None, None] == cluster.per_level_sizes([1, 1, 0], 3)
    assert cluster.per_level_sizes(4, 2) == [4, 4]


@pytest.mark.parametrize("bad", ["10", True, 2.5])
def test_a_size_that_is_neither_an_integer_nor_a_list_is_refused_in_one_line(bad):
    """hierarchical_kmeans is public: "10" was read as the per-level sizes [1, 0] (2 levels: no resampling, without a
    word); True and 2.5 failed with a bare TypeError."""
    with pytest.raises(ConfigError) as err:
        hierarchical_kmeans(_points(), [12, 4], resamples=1, resample_size=bad)
    assert "\n" not in str(err.value) and str(err.value).startswith(f"--resample-size {bad!r} (resample_size= in")
