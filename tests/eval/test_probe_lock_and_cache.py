"""`geodino probe` locks its --out (two probe runs into one folder could interleave their results), and a feature-cache
write that the storage refuses (a full disk) warns once and the probe goes on with the features in memory (it ended
the run, although the cache is optional)."""

from __future__ import annotations

import errno
import os

import pytest

import geodino.cli
from geodino.config import load_config
from geodino.errors import InputError
from geodino.eval.runner import SuiteConfig, run_suite
from geodino.run_lock import output_lock_path
from tests.eval.test_runner import _suite, tiny_backbone  # noqa: F401 (a fixture)
from tests.test_bad_inputs import one_line_exit_2
from tests.test_output_locks import held_by_another_run


def test_probe_into_an_output_folder_another_run_writes_is_refused(tmp_path, tiny_backbone, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.eval.commands",))
    suite = _suite(tmp_path)
    out = tmp_path / "p"
    run = ["probe", "-c", suite, "-b", "tiny", "--out", out, "progress=0"]
    with held_by_another_run(out):
        one_line_exit_2(
            capsys, tmp_path, *run, expect=(f"output folder {out} is being written by another run (pid 4242",)
        )
        with pytest.raises(InputError, match="is being written by another run"):  # the Python API too
            run_suite(load_config(SuiteConfig, suite, ["progress=false"]), "tiny", out)
    assert tiny_backbone == []  # refused before the backbone was loaded
    assert geodino.cli.main([str(a) for a in run]) == 0  # once free, it runs, and leaves no lock file behind
    assert (out / "results.json").is_file() and not output_lock_path(out).exists()


def test_a_full_disk_under_the_feature_cache_warns_once_and_the_probe_completes(tmp_path, tiny_backbone, monkeypatch):  # noqa: F811
    suite = _suite(tmp_path)
    expected = run_suite(load_config(SuiteConfig, suite, ["progress=false"]), "tiny", tmp_path / "ok")
    assert list((tmp_path / "ok" / "feature_cache").glob("*.safetensors"))

    def full_disk(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"part of it")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr("safetensors.torch.save_file", full_disk)
    with pytest.warns(UserWarning) as seen:
        rows = run_suite(load_config(SuiteConfig, suite, ["progress=false"]), "tiny", tmp_path / "full")
    cache = tmp_path / "full" / "feature_cache"
    said = [str(w.message) for w in seen if "feature cache" in str(w.message)]
    assert len(said) == 1, said
    assert said[0].startswith(f"feature cache {cache} could not be written (OSError: [Errno 28] No space left")
    assert [(r["metric"], r["value"]) for r in rows] == [(r["metric"], r["value"]) for r in expected]
    assert (tmp_path / "full" / "results.json").is_file()
    assert not cache.exists()  # no partial file, under a final name or a temporary one, nor the folder made for it


def test_probe_on_a_full_disk_leaves_no_empty_feature_cache(tmp_path, tiny_backbone, monkeypatch, capsys):  # noqa: F811
    """The feature cache's folder is made at its first write, outside the run's `make_dirs`: a probe into a fresh
    --out on a full disk stopped in one line but left OUT/feature_cache/ empty (and with it OUT, where nothing else
    was written); the folder is removed when its write fails."""
    import geodino.eval.runner

    monkeypatch.setattr(geodino.cli, "COMMAND_MODULES", ("geodino.eval.commands",))
    out = tmp_path / "p"

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "results.json"))

    monkeypatch.setattr("safetensors.torch.save_file", full_disk)
    monkeypatch.setattr(geodino.eval.runner, "write_results", full_disk)
    with pytest.warns(UserWarning, match="feature cache .* could not be written"):
        code = geodino.cli.main(["probe", "-c", str(_suite(tmp_path)), "-b", "tiny", "--out", str(out), "progress=0"])
    assert code == 1 and f"writing {out / 'results.json'} (No space" in capsys.readouterr().err
    assert not (out / "feature_cache").exists()
    assert [p for p in out.rglob("*") if p.is_dir() and not any(p.iterdir())] == []  # no empty folder left
