"""benchmarks/embed.py part 1 divides `embed_raster`'s time by backbone-only's: backbone-only must make the call the
sweep makes, on the batches it makes, with a second thread preparing them as the sweep's reader does (its OpenMP
team changed how libgomp waits, which made end to end read 1.5x faster than backbone-only on a loaded CPU)."""

from __future__ import annotations

import threading

import torch

from tests.benchmarks.conftest import bench_module


class _Recorder:
    """A duck-typed backbone (what `embed_raster` accepts) that records each forward: its input, layers, norm, the
    calling thread, the other threads alive, and whether inference mode and autocast were on."""

    patch_size, embed_dim, in_chans, n_blocks = 16, 4, 3, 2

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.mean = torch.tensor([0.3, 0.4, 0.5]).view(-1, 1, 1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / 0.2

    def features(self, x: torch.Tensor, layers="last", norm: bool = True):
        self.calls.append(
            {
                "x": x.clone(),
                "layers": layers,
                "norm": norm,
                "thread": threading.current_thread().name,
                "others": {t.name for t in threading.enumerate()} - {threading.current_thread().name},
                "inference": torch.is_inference_mode_enabled(),
                "autocast": torch.is_autocast_enabled("cpu"),
            }
        )
        pooled = torch.nn.functional.avg_pool2d(x, self.patch_size)  # [B, 3, h/p, w/p]
        maps = torch.cat([pooled, pooled[:, :1]], dim=1)
        return [maps], [maps.mean(dim=(2, 3))]


def test_backbone_only_runs_the_sweeps_call_on_the_sweeps_batches(tmp_path):
    common = bench_module("embed_common")
    from geodino.embed import embed_raster

    src = common.make_raster(tmp_path / "src.tif", 320)  # tile 128 / overlap 32: 3 x 3 tiles, batch_fill(2) = 2
    e2e = _Recorder()
    embed_raster(src, e2e, tmp_path / "e.zarr", tile=128, overlap=32, batch_size=2, progress=False, overwrite=True)
    sweep = [c for c in e2e.calls if c["x"].shape[-1] == 128]  # without `prepare`'s probe forward
    alone = _Recorder()
    seconds, n_tiles = common.backbone_only_seconds(src, alone, tile=128, overlap=32, batch=2)

    assert seconds > 0 and n_tiles == sum(len(c["x"]) for c in sweep) == 9
    assert [tuple(c["x"].shape) for c in alone.calls] == [tuple(c["x"].shape) for c in sweep]
    for a, s in zip(alone.calls, sweep):
        assert torch.equal(a["x"], s["x"])  # the sweep's scaling and normalisation, bit for bit
        assert (a["layers"], a["norm"], a["inference"], a["autocast"]) == (
            s["layers"],
            s["norm"],
            s["inference"],
            s["autocast"],
        )
        assert a["thread"] == s["thread"] == "MainThread"
        assert "backbone-only-prepare" in a["others"]  # the preparing thread lives through every forward
    assert "backbone-only-prepare" not in {t.name for t in threading.enumerate()}  # and ends with the call
