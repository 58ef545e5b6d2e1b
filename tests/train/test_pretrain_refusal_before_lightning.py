"""A start refused for its data (a missing folder: the first thing a newcomer's run may hit) waited for Lightning's
import, seconds before the one line (9.5 s to `image path data/chips does not exist` on the 2-core CPU, 5.2 s
without it): Lightning is now imported only once the data and the resume/init_from checks have passed."""

from __future__ import annotations

import subprocess
import sys


def test_missing_data_is_refused_before_lightning_is_imported(tmp_path) -> None:
    code = (
        "import sys\n"
        "from geodino.cli import main\n"
        f"rc = main(['pretrain', '-c', 'demo', 'output_dir={tmp_path / 'run'}', "
        f"'data.sources=[{{type: images, paths: [{tmp_path / 'nope'}]}}]'])\n"
        "print(rc, 'lightning' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["2", "False"], run.stdout + run.stderr
    assert "does not exist" in run.stderr and not (tmp_path / "run").exists()
