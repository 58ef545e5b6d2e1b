"""`geodino export RUN` on a distillation run folder named a step checkpoint that export then refused (export
reads pretraining checkpoints): it now names the students' exports the run wrote and the convert command for a
checkpoint."""

from __future__ import annotations

from tests.test_bad_inputs import one_line_exit_2


def test_export_of_a_distillation_run_folder_names_its_student_exports(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "vits").mkdir()
    (run / "config.yaml").write_text("output_dir: run\nstudents:\n- name: vits\n")
    (run / "checkpoints" / "step_00000006.ckpt").write_bytes(b"x")
    (run / "vits" / "vits.pth").write_bytes(b"x")
    (run / "vits" / "vits.heads.pth").write_bytes(b"x")
    for given in (run, run / "checkpoints"):
        one_line_exit_2(
            capsys, tmp_path, "export", str(given), str(tmp_path / "x.pth"),
            expect=(
                f"{run} is a distillation run: its students are exported already as {run / 'vits' / 'vits.pth'}; ",
                f"geodino convert {run / 'checkpoints' / 'step_00000006.ckpt'} OUT.pth --which vits",
            ),
        )  # fmt: skip
    (run / "config.yaml").write_text("output_dir: run\nssl: {}\n")  # a pretraining run: the step checkpoint
    line = one_line_exit_2(capsys, tmp_path, "export", str(run), str(tmp_path / "x.pth"))
    assert f"(a run's checkpoints are files: pass {run / 'checkpoints' / 'step_00000006.ckpt'})" in line
