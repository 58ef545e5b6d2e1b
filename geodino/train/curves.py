"""Training curves of a pretraining run as one PNG: the loss terms against ln K, and the plateau diagnostics.

A flat DINO loss at ln K means the DINO and iBOT terms taught nothing, whatever else moved; the figure puts the
losses next to ln K and next to the quantities that explain a plateau (teacher target entropy, how much the
teacher's CLS differs across images, logit scale, LayerScale size, lr), so a user sees at a glance whether a
run learns. `pretrain()` writes `<run>/curves.png` at the end of every run; `plot_run(run_dir)` redraws it.
`distill()` writes its own `curves.png` from its `log.csv` (`plot_distill_log`): each student's loss terms and the
schedules that drive them.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["find_metrics", "loss_summary", "plot_curves", "plot_distill_log", "plot_run", "read_metrics"]

_LOSSES = ("dino_global_loss", "dino_local_loss", "ibot_loss", "koleo_loss", "gram_loss")
_PANELS = (
    ("teacher target entropy (nats)", ("monitor/teacher_entropy", "monitor/ibot_teacher_entropy")),
    ("teacher CLS spread across images", ("monitor/teacher_cls_spread",)),
    ("head logit std", ("monitor/teacher_logit_std", "monitor/student_logit_std")),
    ("LayerScale |gamma|", ("monitor/layerscale_gamma",)),
    ("lr", ("sched/lr",)),
)


def find_metrics(run_dir: str | Path) -> list[Path]:
    """Every `metrics.csv` under `<run>/logs` (a resumed run may have written more than one), oldest first."""
    logs = Path(run_dir) / "logs"
    return sorted(logs.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime) if logs.is_dir() else []


def read_metrics(paths: list[Path]) -> dict[str, dict[int, float]]:
    """{column: {step: value}} merged over CSV files (a later file wins for a step both hold)."""
    out: dict[str, dict[int, float]] = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                step = row.get("step")
                if not step:
                    continue
                if None in row or None in row.values():  # a row a kill cut short, or one glued to the next
                    continue
                for key, val in row.items():
                    if key == "step" or val == "":
                        continue
                    try:
                        out.setdefault(key, {})[int(float(step))] = float(val)
                    except ValueError:
                        continue
    return out


def plot_curves(
    metrics: dict[str, dict[int, float]],
    out_png: str | Path,
    n_prototypes: int | None = None,
    mask_share: float = 0.5,
) -> Path:
    """Draw each loss on its own axis (DINO against ln K, iBOT against `mask_share` x ln K: its plateau, as the loss
    is averaged over all global crops and only that share of them is masked; ln K / 2 at the default 0.5) and the
    diagnostics that are present; write `out_png` atomically."""
    from geodino.viz.figures import figures, save_figure

    plt = figures()

    panels = [(title, [k for k in keys if metrics.get(k)]) for title, keys in _PANELS]
    panels = [(t, keys) for t, keys in panels if keys]
    loss_rows: list[tuple[str, Sequence[str], float]] = [
        ("DINO loss", ("dino_global_loss", "dino_local_loss"), 1.0),
        ("iBOT loss", ("ibot_loss",), float(mask_share)),
        # each on its own axis: the Gram loss (~1e-3..1e-2) drew flat at zero next to KoLeo (~0.5..2)
        ("KoLeo loss", ("koleo_loss",), 0.0),
        ("Gram loss", ("gram_loss",), 0.0),
    ]
    loss_rows = [(t, [k for k in keys if metrics.get(k)], f) for t, keys, f in loss_rows]
    loss_rows = [r for r in loss_rows if r[1]]
    n = len(loss_rows) + len(panels)
    fig, axes = plt.subplots(max(n, 1), 1, figsize=(7.5, 1.2 + 1.7 * max(n, 1)), sharex=True, squeeze=False)
    axes = list(axes[:, 0])
    ln_k = math.log(n_prototypes) if n_prototypes and n_prototypes > 1 else None
    for ax, (title, keys, frac) in zip(axes, loss_rows):
        for key in keys:
            _plot_series(ax, metrics[key], key.removesuffix("_loss"))
        if ln_k is not None and frac:
            ax.axhline(frac * ln_k, color="k", ls="--", lw=0.8, label=_share_of_ln_k(frac))
        ax.set_ylabel(title, fontsize=8)
        ax.legend(fontsize=7, ncol=3)
    if loss_rows:
        ibot = _share_of_ln_k(float(mask_share))
        axes[0].set_title(f"losses: a flat DINO loss at ln K (iBOT at {ibot}) means nothing was learned", fontsize=9)
    for ax, (title, keys) in zip(axes[len(loss_rows) :], panels):
        for key in keys:
            _plot_series(ax, metrics[key], key.split("/")[-1])
        if title.startswith("teacher target entropy") and n_prototypes and n_prototypes > 1:
            ax.axhline(math.log(n_prototypes), color="k", ls="--", lw=0.8)
        ax.set_ylabel(title, fontsize=7)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    axes[-1].set_xlabel("step")
    _integer_steps(axes)
    return save_figure(fig, out_png, dpi=110, format="png")


def _integer_steps(axes: Any) -> None:
    """Whole-number ticks on the step axis: one logged step drew ticks at 2.85, 2.9 ... 3.15; and each value axis
    says its values as they are: matplotlib's offset (ticks 0.0, 0.2 ... under a corner `+9.999e-1`, on a LayerScale
    |gamma| that moves in its fifth digit) left the value to be added up from two places."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # one step: one tick
        if isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):
            ax.yaxis.get_major_formatter().set_useOffset(False)  # a scientific exponent (an lr's 1e-4) stays


# a series with fewer logged steps than this is drawn with markers: a line through one point draws nothing
# (`geodino demo --size tiny` logs one step and its curves.png looked empty)
MARKERS_BELOW = 20


def _plot_series(ax: Any, series: dict[int, float], label: str) -> None:
    """One logged series against its steps; with a marker at every point when there are few of them."""
    steps = sorted(series)
    marker = {"marker": "o", "ms": 3.5} if len(steps) < MARKERS_BELOW else {}
    ax.plot(steps, [series[s] for s in steps], label=label, lw=1.2, **marker)


def _share_of_ln_k(frac: float) -> str:
    """How a plateau line is labelled: ln K, ln K / 2, or e.g. 0.3 ln K."""
    return "ln K" if frac == 1 else "ln K / 2" if frac == 0.5 else f"{frac:g} ln K"


def run_mask_share(run_dir: str | Path) -> float:
    """The share of global crops a run masks for iBOT (`ssl.ibot.mask_sample_probability` in `<run>/config.yaml`;
    0.5, the default, when the file or the key is missing)."""
    import yaml  # omegaconf's dependency

    try:
        cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
        return float(cfg["ssl"]["ibot"]["mask_sample_probability"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):  # no config: the default
        return 0.5


def plot_run(run_dir: str | Path, out_png: str | Path | None = None, n_prototypes: int | None = None) -> Path | None:
    """`<run>/curves.png` from the run's metrics CSVs; None when the run logged no CSV (trainer.loggers). The iBOT
    plateau line uses the run's mask share from its config.yaml."""
    paths = find_metrics(run_dir)
    if not paths:
        return None
    metrics = read_metrics(paths)
    if n_prototypes is None:
        k = metrics.get("monitor/max_entropy")
        n_prototypes = round(math.exp(next(iter(k.values())))) if k else None
    return plot_curves(metrics, out_png or Path(run_dir) / "curves.png", n_prototypes, run_mask_share(run_dir))


def plot_distill_log(
    log_csv: str | Path, out_png: str | Path | None = None, n_prototypes: int | None = None
) -> Path | None:
    """`curves.png` beside a distillation `log.csv`: one panel per student with its loss terms (columns
    `<student>/<term>`; with `n_prototypes`, a dashed ln K line, the DINO loss of a student that learned nothing),
    then the total loss and the lr / momentum / teacher-temperature schedules. None when the log has no rows yet."""
    from matplotlib.figure import Figure  # no pyplot: no global backend switch inside a user's notebook

    from geodino.io import atomic_path

    log_csv = Path(log_csv)
    metrics = read_metrics([log_csv]) if log_csv.is_file() else {}
    if not metrics:
        return None
    students = sorted({k.split("/", 1)[0] for k in metrics if "/" in k and "/grad_norm/" not in k})
    rows: list[tuple[str, list[str]]] = [
        (f"{name} losses", [k for k in sorted(metrics) if k.startswith(f"{name}/") and "/grad_norm/" not in k])
        for name in students
    ]
    rows += [(title, [k for k in keys if k in metrics]) for title, keys in _DISTILL_PANELS]
    rows = [(t, keys) for t, keys in rows if keys]
    fig = Figure(figsize=(7.5, 1.2 + 1.7 * len(rows)))
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    ln_k = math.log(n_prototypes) if n_prototypes and n_prototypes > 1 else None
    for ax, (title, keys) in zip(axes, rows):
        for key in keys:
            _plot_series(ax, metrics[key], key.split("/")[-1])
        if ln_k is not None and title.endswith(" losses"):
            ax.axhline(ln_k, color="k", ls="--", lw=0.8, label="ln K")
        ax.set_ylabel(title, fontsize=8)
        if len(keys) > 1:
            ax.legend(fontsize=7, ncol=3)
    axes[-1].set_xlabel("step")
    _integer_steps(axes)
    fig.tight_layout()
    out_png = Path(out_png) if out_png else log_csv.with_name("curves.png")
    with atomic_path(out_png, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return out_png


_DISTILL_PANELS = (
    ("total loss", ("loss",)),
    ("lr", ("lr",)),
    ("momentum", ("momentum",)),
    ("teacher temperature", ("teacher_temp",)),
)


def describe_loss(loss: dict[str, float]) -> str:
    """A `loss_summary` in words: where the DINO loss started and ended against ln K (the demo's and the pretrain
    command's closing line). The first logged value is "at the start" only when step 0 was logged, else it is
    named by its step; one logged point is said as one point (a "start -> end" of one value reads as a run
    that learned nothing); a dip below ln K - 0.1 that did not last is said as such."""
    ln_k = f"ln K = {loss['ln_k']:.3f}"
    at = loss.get("left_plateau_at", -1)
    if loss.get("n_logged", 2) == 1:
        where = "0.1 below" if at >= 0 else "not 0.1 below"
        step = loss.get("first_step", loss.get("last_step"))
        return (
            f"{loss['first']:.3f} at step {step}, the only logged step ({ln_k}; {where}; log more often with "
            "trainer.log_every_n_steps)"
        )
    if at < 0:
        where = "never 0.1 below"
    elif loss.get("end_below", True):
        where = f"0.1 below from step {at}"
    else:
        where = f"first 0.1 below at step {at}, above again by the end"
    # Lightning logs step N-1 first (N = trainer.log_every_n_steps): that value is not the loss at the start
    first_step = int(loss.get("first_step", 0))
    start = "at the start" if first_step == 0 else f"at step {first_step} (the first logged)"
    return f"{loss['first']:.3f} {start} -> {loss['end']:.3f} at the end ({ln_k}; {where})"


def loss_summary(run_dir: str | Path, key: str = "dino_global_loss", margin: float = 0.1) -> dict[str, float]:
    """Where a run's DINO loss went: ln K, the first logged value and its step, the mean over the last 10 % of
    logged steps (`end`) and whether it is `margin` nats below ln K (`end_below`), the first step at which the loss
    was that far below (-1: never), and how many steps were logged. Empty when nothing was logged."""
    m = read_metrics(find_metrics(run_dir))
    loss = m.get(key, {})
    k = m.get("monitor/max_entropy", {})
    if not loss or not k:
        return {}
    steps = sorted(loss)
    ln_k = next(iter(k.values()))
    tail = [loss[s] for s in steps[int(0.9 * len(steps)) :]]
    below = [s for s in steps if loss[s] < ln_k - margin]
    end = sum(tail) / len(tail)
    return {
        "ln_k": round(ln_k, 3),
        "first": round(loss[steps[0]], 3),
        "first_step": steps[0],
        "end": round(end, 3),
        "end_below": end < ln_k - margin,
        "left_plateau_at": below[0] if below else -1,
        "last_step": steps[-1],
        "n_logged": len(steps),
    }
