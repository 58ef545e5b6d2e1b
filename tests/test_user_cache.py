"""geodino's per-user cache folder (`geodino.user_cache`): one variable moves every cache, XDG is honoured, and
the probes' Python default feature cache lives there too."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodino.user_cache import CACHE_DIR_ENV, user_cache_dir


def test_the_variable_then_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert user_cache_dir("digests") == tmp_path / "home" / ".cache" / "geodino" / "digests"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: a relative value is ignored
    assert user_cache_dir("digests") == tmp_path / "home" / ".cache" / "geodino" / "digests"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir("digests") == tmp_path / "xdg" / "geodino" / "digests"
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert user_cache_dir("features") == tmp_path / "mine" / "features"


def test_a_relative_variable_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Taken against the working folder, jobs started in different folders would keep separate caches silently."""
    from geodino.backbones.weights_digest import cached_sha256
    from geodino.errors import ConfigError

    monkeypatch.setenv(CACHE_DIR_ENV, "scratch/cache")
    with pytest.raises(ConfigError) as err:
        user_cache_dir("digests")
    line = str(err.value)
    assert "\n" not in line and "GEODINO_CACHE_DIR='scratch/cache'" in line and "absolute" in line
    with pytest.raises(ConfigError):  # the digest cache says so too, rather than caching per working folder
        cached_sha256(Path(__file__))
    monkeypatch.setenv(CACHE_DIR_ENV, "~/cache")  # `~` is expanded: absolute
    assert user_cache_dir("digests") == Path.home() / "cache" / "digests"


def test_the_feature_cache_default_follows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from geodino.eval.features import default_cache_dir

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine" / "features"


def test_tests_do_not_use_the_real_home() -> None:
    """tests/conftest.py points the variable at a temporary folder for the whole run (subprocesses included)."""
    import os

    assert os.environ.get(CACHE_DIR_ENV)
    assert not Path(os.environ[CACHE_DIR_ENV]).is_relative_to(Path.home() / ".cache")
