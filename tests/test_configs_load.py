"""Every YAML under configs/ loads with its schema (the README's own examples), and building the CLI parser stays
light (the schemas live in torch-free modules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from geodino.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _schema(kind: str):
    if kind == "pretrain":
        from geodino.train.config import PretrainConfig

        return PretrainConfig
    if kind == "distill":
        from geodino.train.distill.config import DistillConfig

        return DistillConfig
    if kind == "embed":
        from geodino.embed.config import EmbedConfig

        return EmbedConfig
    if kind == "eval":
        from geodino.eval.runner import SuiteConfig

        return SuiteConfig
    return None


ALL = sorted(p for p in CONFIGS.rglob("*.yaml"))


def test_every_config_folder_is_covered():
    kinds = {p.relative_to(CONFIGS).parts[0] for p in ALL}
    assert kinds == {"pretrain", "distill", "embed", "eval", "sensors"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_loads_with_its_schema(path, tmp_path):
    kind = path.relative_to(CONFIGS).parts[0]
    if kind == "sensors":
        from geodino.data.sensors import get_sensor

        sensor = get_sensor(str(path))
        assert sensor.n_bands == len(sensor.bands) > 0
        return
    cfg = load_config(_schema(kind), path)
    if kind == "eval":  # each task's section loads with its task schema too
        from geodino.eval.runner import parse_tasks

        assert parse_tasks(cfg, tmp_path)
    elif kind == "distill":
        assert cfg.students and all(s.arch for s in cfg.students)


def test_cli_parser_imports_no_torch():
    """Nor numpy (~0.1 s of every `geodino --help`): embed's config took its blend modes and dtypes from numpy
    modules at import."""
    code = (
        "import sys; from geodino.cli import build_parser; build_parser(); "
        "print([m for m in ('torch', 'rasterio', 'lightning', 'numpy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
