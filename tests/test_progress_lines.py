"""Progress in batch jobs (`geodino.progress`): where a bar's stream is not a terminal (a SLURM or nohup log file, a
pipe, CI) tqdm's carriage-return redraws made one enormous line of a log; there every geodino bar, and
pretraining's Lightning bar, writes whole lines instead: at most one per `GEODINO_PROGRESS_INTERVAL` seconds while
it runs, and its last state at its end. `GEODINO_PROGRESS=bar|lines|off` forces a mode; a terminal keeps tqdm's
bar."""

from __future__ import annotations

import io
import re
import sys

import numpy as np
import pytest

from geodino import cli, progress
from geodino.errors import ConfigError
from geodino.progress import LineWriter, progress_bar, progress_mode
from tests.embed.conftest import write_tif

SPEC = "arch:vit_tiny?depth=1&patch_size=8&seed=0"
# the line of the sweep's bar: its counts, its rate and its timing, nothing redrawn
EMBED_LINE = re.compile(r"^embed: (\d+)/(\d+) tiles \((\d+\.\d) %\), [\d.]+(tile/s|s/tile), elapsed \d\d:\d\d, eta ")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_forced_mode(monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.delenv(progress.INTERVAL_ENV, raising=False)


def _embed(capsys, tmp_path, *extra: str) -> str:
    """The stderr of a tiny `geodino embed` (9 tiles of 32 px in batches of 2: 5 updates of its bar)."""
    scene = tmp_path / "scene.tif"
    if not scene.exists():
        write_tif(scene, (np.random.default_rng(0).random((3, 64, 64)) * 255).astype(np.uint8))
    capsys.readouterr()
    argv = ["embed", scene, "--backbone", SPEC, "--out", tmp_path / "f.tif", "--tile", "32", "--overlap", "8"]
    assert cli.main([str(a) for a in [*argv, "--batch-size", "2", "--overwrite", *extra]]) == 0
    return capsys.readouterr().err


def test_an_embed_whose_stderr_is_a_file_writes_whole_progress_lines(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0")  # a line at each update (30 s apart by default)
    err = _embed(capsys, tmp_path)
    assert "\r" not in err and "\x1b[" not in err, repr(err)
    lines = [m for m in map(EMBED_LINE.match, err.splitlines()) if m]
    assert 2 <= len(lines) <= 7, err  # its start, updates and end, nothing redrawn in between
    done = [(int(m[1]), int(m[2])) for m in lines]
    assert done == sorted(done) and done[-1][0] == done[-1][1] and lines[-1][3] == "100.0", err
    assert not [ln for ln in err.splitlines() if "%|" in ln], err  # no bar anywhere (the COG's neither)


def test_by_default_a_short_bar_writes_its_last_state_only_and_bar_mode_gives_tqdms_bar(capsys, tmp_path, monkeypatch):
    lines = [m for m in map(EMBED_LINE.match, _embed(capsys, tmp_path).splitlines()) if m]
    assert len(lines) == 1 and lines[0][1] == lines[0][2], lines  # seconds long: under the 30 s interval
    monkeypatch.setenv(progress.PROGRESS_ENV, "bar")
    err = _embed(capsys, tmp_path)
    assert "\r" in err and re.search(r"embed: +\d+%\|.*\| *\d+/\d+ \[", err), repr(err)
    monkeypatch.setenv(progress.PROGRESS_ENV, "off")
    assert "embed:" not in _embed(capsys, tmp_path)


def test_the_mode_follows_the_stream_and_the_environment(monkeypatch):
    assert progress_mode(io.StringIO()) == "lines" and progress_mode(_Terminal()) == "bar"
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", type(sys)("ipykernel.zmqshell"))
    assert progress_mode(io.StringIO()) == "bar"  # a Jupyter kernel's stream is no terminal, and draws bars
    monkeypatch.delitem(sys.modules, "ipykernel.zmqshell")
    for value, mode in [("lines", "lines"), (" BAR ", "bar"), ("off", "off"), ("auto", "bar")]:
        monkeypatch.setenv(progress.PROGRESS_ENV, value)
        assert progress_mode(_Terminal()) == mode, value
    monkeypatch.setenv(progress.PROGRESS_ENV, "quiet")
    with pytest.raises(ConfigError, match=r"GEODINO_PROGRESS='quiet' is not a progress mode; use bar, lines, off"):
        progress_mode(io.StringIO())
    monkeypatch.delenv(progress.PROGRESS_ENV)
    monkeypatch.setenv(progress.INTERVAL_ENV, "5m")
    with pytest.raises(ConfigError, match=r"GEODINO_PROGRESS_INTERVAL='5m' must be a number of seconds >= 0"):
        progress_mode(io.StringIO())  # where the mode is read, before a run: not at its first line
    assert progress_mode(_Terminal()) == "bar"  # a terminal never reads it


def test_a_terminal_keeps_tqdms_bar_and_off_writes_nothing(monkeypatch):
    tty = _Terminal()
    bar = progress_bar(total=5, desc="embed", unit="tile", file=tty, mininterval=0)
    for _ in range(5):
        bar.update()
    bar.close()
    assert not isinstance(bar.fp._wrapped, LineWriter)
    shown = tty.getvalue()
    assert shown.count("\r") >= 5 and "embed: 100%|" in shown and "5/5 [" in shown, repr(shown)
    monkeypatch.setenv(progress.PROGRESS_ENV, "off")
    log = io.StringIO()
    assert list(progress_bar(range(3), desc="x", file=log)) == [0, 1, 2] and log.getvalue() == ""


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_line_writer_writes_one_line_per_interval_and_the_last_state(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    log = io.StringIO()
    w = LineWriter(log, 30.0)
    for t in range(0, 100, 5):  # tqdm's redraws of a bar, every 5 s
        clock.t = t
        w.write(f"\rx: {t}/100   ")
    w.write("\n")  # tqdm closing a bar that stays: its last state, once
    assert log.getvalue().splitlines() == ["x: 30/100", "x: 60/100", "x: 90/100", "x: 95/100"]
    log = io.StringIO()
    w = LineWriter(log, 30.0)
    w.write("\ry: 1/9")
    w.write("\r      ")  # tqdm clearing a bar that does not stay (leave=False): no last line
    w.write("\r")
    w.write("\n")
    assert log.getvalue() == ""


def test_a_line_bar_is_no_open_line_and_ends_before_the_error_line(monkeypatch, capsys):
    """A message needs no line break before it (no blank line in the log), and a run stopped mid-bar writes the
    bar's last state before its `geodino: error:` line."""
    import geodino.data.commands as data_commands
    from geodino.errors import InputError

    def stopped_mid_bar(args):
        bar = progress_bar(total=256, desc="embedding tiles", unit="tile")
        bar.update(3)
        assert progress.line_start() == ""
        stopped_mid_bar.bar = bar  # held, as a traceback's frames hold it
        raise InputError("bad tile")

    monkeypatch.setattr(data_commands, "_sensors", stopped_mid_bar)
    assert cli.main(["data", "sensors"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "geodino: error: bad tile" and err[-2].startswith("embedding tiles: 3/256 tiles (1.2 %), "), err


def test_pretrainings_bar_writes_lines_off_a_terminal_and_off_removes_it(tmp_path, monkeypatch, capsys):
    import lightning as L
    import torch

    from geodino.train.config import CheckpointConfig, TrainerConfig
    from geodino.train.trainer import RunProgressBar, build_trainer

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def training_step(self, batch, _i):
            return self.w(batch).square().mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.ones(8, 2), batch_size=1)

    trainer = L.Trainer(
        max_steps=5, callbacks=[RunProgressBar(refresh_rate=1)], logger=False, enable_checkpointing=False,
        enable_model_summary=False, accelerator="cpu", default_root_dir=str(tmp_path),
    )  # fmt: skip
    capsys.readouterr()
    trainer.fit(Tiny())
    out = capsys.readouterr().out  # Lightning's bar writes on stdout
    assert "\r" not in out, repr(out)
    # a second long: no line in the 30 s interval, one at the end (a step's redraws were 2 of `\r` each)
    assert re.fullmatch(r"Epoch 0: 5/5 it \(100.0 %\), [^\r\n]*, elapsed 00:0\d, eta 00:00\n", out), repr(out)
    monkeypatch.setenv(progress.PROGRESS_ENV, "off")
    cfg = TrainerConfig(max_steps=2, accelerator="cpu", precision="32-true", loggers=[], progress_bar=True)
    off, _ = build_trainer(cfg, CheckpointConfig(every_n_steps=100, keep_last=1), tmp_path)
    assert not [c for c in off.callbacks if "ProgressBar" in type(c).__name__]  # nor Lightning's own


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("GEODINO_PROGRESS", "fancy", "is not a progress mode"),
        ("GEODINO_PROGRESS_INTERVAL", "soon", "GEODINO_PROGRESS_INTERVAL"),
    ],
    ids=["mode", "interval"],
)
def test_a_bad_progress_setting_is_refused_before_the_command_runs(monkeypatch, capsys, name, value, said):
    monkeypatch.setenv(name, value)
    assert cli.main(["data", "sensors"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and said in err and err.startswith("geodino: error: ")
    assert out == ""  # the command (a table on stdout) did not run


def test_a_lines_bar_says_its_unit_in_the_number_of_its_total():
    """`4/4 tiles`, `1/1 tile`: the count's unit agrees with the total ("4/4 tile" before); the rate keeps tqdm's
    `tile/s`, and tqdm's "it", abbreviations and plural units stay as they are."""
    said = []
    for unit, total in (("tile", 4), ("block", 1), ("img", 3), ("cells", 2), ("patch", 2)):
        out = io.StringIO()
        with progress_bar(range(total), desc="demo", unit=unit, file=out, mininterval=0) as bar:
            for _ in bar:
                pass
        said.append(out.getvalue().splitlines()[-1])
    assert [s.split(" (")[0] for s in said] == [
        "demo: 4/4 tiles", "demo: 1/1 block", "demo: 3/3 img", "demo: 2/2 cells", "demo: 2/2 patches"
    ], said  # fmt: skip
    assert "tile/s" in said[0] or "s/tile" in said[0], said
    out = io.StringIO()  # no known total: counting up, the plural
    with progress_bar(iter(range(3)), desc="demo", unit="file", file=out) as bar:
        for _ in bar:
            pass
    assert out.getvalue().splitlines()[-1].startswith("demo: 3 files, "), out.getvalue()
