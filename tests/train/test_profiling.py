"""`trainer.profile_steps`: the step range it parses, the per-step figures it derives, and the files a run writes."""

from __future__ import annotations

import json

import pytest

from geodino.errors import ConfigError
from geodino.train.module import TrainerConfig
from geodino.train.profiling import parse_steps, summarize
from tests.train.standin import StandInArch
from tests.train.test_module import fit


def test_parse_steps_and_its_errors():
    assert parse_steps("", 10) is None
    assert parse_steps(" 2-4 ", 10) == (2, 4)
    assert parse_steps("3-3", 4) == (3, 3)
    for spec, words in (
        ("abc", "not a step range"),
        ("5-2", "comes before the first 5"),
        ("3-10", "past the run's last step 9"),
    ):
        with pytest.raises(ConfigError, match=words) as err:
            parse_steps(spec, 10)
        assert "trainer.profile_steps" in str(err.value)
    # checked with the rest of the trainer settings, before a run starts
    with pytest.raises(ConfigError, match=r"trainer\.max_steps=6"):
        TrainerConfig(max_steps=6, profile_steps="4-8").validate()


def test_summarize_counts_per_step_from_device_events():
    """Two steps over 1.0 s: hand-counted launches, syncs, host reads, ops and the kernel-time share."""
    events = [
        *[("cudaLaunchKernel", False, 5.0)] * 6,
        ("cuLaunchKernel", False, 5.0),
        ("cudaStreamSynchronize", False, 900.0),
        ("cudaDeviceSynchronize", False, 10.0),
        ("cudaMemcpyAsync", False, 20.0),  # neither a launch nor a sync
        *[("aten::mm", False, 100.0)] * 4,
        *[("aten::_local_scalar_dense", False, 1.0)] * 2,
        ("ProfilerStep#1", False, 1e6),  # not an aten op
        ("sm90_xmma_gemm", True, 300_000.0),
        ("elementwise_kernel", True, 100_000.0),
    ]
    got = summarize(events, steps=2, wall_s=1.0, device=True)
    assert got.wall_s == 0.5
    assert got.ops == 3.0  # 4 mm + 2 scalar reads over 2 steps
    assert got.host_reads == 1.0
    assert got.launches == 3.5
    assert got.syncs == 1.0
    assert got.device_busy == pytest.approx(0.4)
    assert (
        "device busy 40% of the wall time, 4 kernel launches and 1 synchronisations (host reads included) per step"
        in got.line()
    )
    cpu = summarize(events[:-2], steps=2, wall_s=1.0, device=False)
    assert cpu.launches is None and cpu.syncs is None and cpu.device_busy is None
    assert "device busy" not in cpu.line()


def test_profiled_steps_write_trace_and_summary(tmp_path, capsys):
    _, trainer, _ = fit(tmp_path, StandInArch(), max_steps=4, trainer_kw={"profile_steps": "1-2"})
    prof = next(cb for cb in trainer.callbacks if type(cb).__name__ == "StepProfiler")
    assert prof.done and prof.result is not None
    assert prof.result.steps == 2 and prof.result.wall_s > 0 and prof.result.ops > 10
    assert prof.result.host_reads >= 1  # at least the NaN guard's bool() of the loss
    assert prof.result.device_busy is None  # a CPU run
    trace = json.loads((tmp_path / "profile" / "steps_1-2.trace.json").read_text())
    names = {e.get("name", "") for e in trace["traceEvents"]}
    assert any(n.startswith("aten::") for n in names)
    summary = (tmp_path / "profile" / "steps_1-2.txt").read_text()
    assert summary.startswith("profiled steps 1-2: ") and "s/step" in summary and "Self CPU" in summary
    assert not list((tmp_path / "profile").glob(".*"))  # no temporary files left behind
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("geodino: profiled steps 1-2: "))
    assert "s/step" in line and "perfetto" in line and "steps_1-2.trace.json" in line


def test_resumed_past_the_range_says_so_and_profiles_nothing(tmp_path, capsys):
    from types import SimpleNamespace

    from geodino.train.profiling import StepProfiler

    prof = StepProfiler(2, 4, tmp_path / "profile")
    trainer = SimpleNamespace(global_step=10, is_global_zero=True)
    with pytest.warns(UserWarning, match="trainer.profile_steps=2-4 lies before step 10"):  # CLI: "geodino: warning:"
        prof.on_train_start(trainer, None)
    prof.on_train_batch_start(trainer, None, None, 0)
    assert prof.done and prof._prof is None and not (tmp_path / "profile").exists()
    assert capsys.readouterr().err == ""
    # a run resumed inside the range profiles from where it resumed
    inside = StepProfiler(2, 4, tmp_path / "p2")
    inside.on_train_start(SimpleNamespace(global_step=3, is_global_zero=True), None)
    assert not inside.done


def test_host_reads_count_exactly_the_extra_reads_a_step_makes(tmp_path, monkeypatch):
    """The same run twice, the second reading the loss on the host 5 more times per step: the per-step count rises
    by exactly 5 (whatever the CPU kernels and Lightning read besides, it is the same in both runs)."""
    from geodino.train.module import SSLModule

    def profiled(folder):
        _, trainer, _ = fit(folder, StandInArch(), max_steps=4, trainer_kw={"profile_steps": "1-2"})
        return next(cb for cb in trainer.callbacks if type(cb).__name__ == "StepProfiler").result

    base = profiled(tmp_path / "a")
    real = SSLModule._log_step

    def reading(self, loss, *args):
        for _ in range(5):
            float(loss.detach())
        return real(self, loss, *args)

    monkeypatch.setattr(SSLModule, "_log_step", reading)
    more = profiled(tmp_path / "b")
    assert more.host_reads - base.host_reads == 5.0
