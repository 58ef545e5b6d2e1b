"""The "time" line of `geodino embed`: where one run's wall time went, said on the console before its last line."""

from __future__ import annotations

__all__ = ["time_line"]


def time_line(
    total: float, setup: float, sweep: float, finish: float, timing: dict[str, float], tiles: int, device: str = "cpu"
) -> str:
    """Where an embed run's wall time went, for the console: set-up (backbone, plan, compile warm-up), the sweep
    split by the main thread's steps, and finishing (the output written from the work store). "waiting for tiles" is
    time the main thread had nothing to infer (the reader is the bound when it is large); "rows out" is dividing,
    normalising and encoding finished rows and handing them to the writer thread (which blocks when it is behind).
    On an accelerator the forward only queues kernels and the device's time lands where the host next waits (the
    rows' read-back), so the rate there counts forward, blending and rows out together."""
    f = timing["forward"]
    if device == "cpu":
        forward = f"forward {f:.1f}" + (f" at {tiles / f:.1f} tiles/s" if f > 0 else "")
    else:
        busy = f + timing["blending"] + timing["rows"]
        forward = f"forward {f:.1f} queued" + (f", {tiles / busy:.1f} tiles/s through rows out" if busy > 0 else "")
    return (
        f"time {total:.1f} s: set-up {setup:.1f}, sweep {sweep:.1f} ({forward}, waiting for tiles "
        f"{timing['waiting']:.1f}, blending {timing['blending']:.1f}, rows out {timing['rows']:.1f}), "
        f"finishing {finish:.1f}"
    )
