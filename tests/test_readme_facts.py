"""Facts the README states in prose (not in fenced commands, which tests/docs checks): the built-in sensor list and
the dotted config keys it tells users to set inline load in the schema of the command they belong to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_lists_every_built_in_sensor():
    from geodino.data.sensors import SENSORS

    line = re.search(r"Built-in sensors \(`geodino data sensors`\):(.*?)\.\n", README, re.S)
    assert line, "the README's built-in sensor sentence is gone"
    assert set(re.findall(r"`(\w+)`", line.group(1))) == set(SENSORS)


def _inline_overrides() -> list[str]:
    """`a.b=value` keys written in backticks in the README's prose (fenced blocks left to tests/docs)."""
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    keys = re.findall(r"`([a-z_<>]+(?:\.[a-z_<>]+)+)=[^`]*`", prose)
    return sorted(set(keys))


def _loads(key: str) -> bool:
    """Whether `key` is a valid override of the pretraining, distillation or probe config (a probe task key is
    tried on the demo suite's task)."""
    from geodino.config import load_config
    from geodino.errors import ConfigError
    from geodino.eval.runner import SuiteConfig
    from geodino.train.config import PretrainConfig
    from geodino.train.distill.config import DistillConfig

    probe_key = key.replace("tasks.<name>.", "tasks.demo_landcover.")
    for schema, base, k in ((PretrainConfig, "demo", key), (DistillConfig, "vitl_to_vits", key)):
        try:
            load_config(schema, base, [f"{k}=null"])
            return True
        except ConfigError as e:
            if "unknown config key" not in str(e):
                return True  # the key exists; null is just not a valid value for it
    try:
        load_config(SuiteConfig, "demo", [f"{probe_key}=off"])
        return True
    except ConfigError as e:
        return "unknown config key" not in str(e)


@pytest.mark.parametrize("key", _inline_overrides())
def test_readme_inline_override_is_a_config_key(key):
    assert _loads(key), f"README tells users to set {key}=..., which no command's config has"
