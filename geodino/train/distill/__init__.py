"""`geodino distill`: distil a frozen teacher (yours or an official DINOv3 release) into one or more smaller ViTs.

    geodino distill --config configs/distill/vitl_to_vits.yaml train.max_steps=100

What happens (docs/distillation.md has the guide):

1. The teacher backbone is loaded from any `geodino.backbones.load_backbone` spec and frozen. Its DINO/iBOT
   heads come from `teacher.heads`, or from the teacher file itself (a geodino checkpoint/export with heads, an
   official `teacher_checkpoint.pth`); when there are none (official releases), fresh heads are trained in a
   short heads-only warm-up on the frozen teacher (`geodino.train.teacher_heads`) and saved as
   `OUTPUT/teacher.heads.pth`.
2. Every student (`students: [{name, arch, ...}]`) is built with the teacher's patch size and prototype counts.
3. Training: DINO + iBOT patch distillation (students get unmasked crops) + KoLeo, as the official
   `MultiDistillationMetaArch`. One teacher forward per step serves every student on a device; with several
   processes each student owns a rank range and a process subgroup (`geodino.train.subgroups`).
4. Each student's EMA is exported in the official layout: `OUTPUT/<name>/<name>.{pth,safetensors,heads.pth}`.

The package is split by job: `config` (the schema, torch-free), `build` (teacher, heads, data, schedules,
optimizer), `students` (each student checked against the teacher, then built), `run_setup` (the run's set-up),
`step` (one step), `loop` (the steps), `export` (the resumable checkpoint format and the official-layout export).
"""

from __future__ import annotations

from geodino.train.distill.config import DistillConfig, DistillTrainConfig, StudentSpec, TeacherConfig

__all__ = [
    "DistillConfig",
    "DistillTrainConfig",
    "StudentSpec",
    "TeacherConfig",
    "build_student",
    "check_files",
    "check_student_spec",
    "distill",
    "export_student",
    "load_teacher",
    "teacher_heads",
]


def __getattr__(name: str):
    """The runtime parts (torch) load on first use, so `from geodino.train.distill import DistillConfig` stays
    light for the CLI parser."""
    if name == "distill":
        from geodino.train.distill.loop import distill

        return distill
    if name == "export_student":
        from geodino.train.distill.export import export_student

        return export_student
    if name in ("build_student", "check_files", "check_student_spec", "load_teacher", "teacher_heads"):
        from geodino.train.distill import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
