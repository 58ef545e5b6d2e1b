"""The notebooks run top to bottom (at toy size), so what they show keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart", "pretraining", "probing"])
def test_notebook_executes(name, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    path = NOTEBOOKS / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "store notebooks without outputs"
    monkeypatch.setenv("GEODINO_TINY", "1")
    monkeypatch.setenv("GEODINO_NB_DIR", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(tmp_path.iterdir())
    if name == "pretraining":  # its curves are lines, not one point each (a 6-step run logged only step 4 before)
        import csv

        with open(tmp_path / "run" / "logs" / "metrics.csv", newline="") as f:
            steps = {row["step"] for row in csv.DictReader(f) if row.get("step")}
        assert len(steps) >= 2, f"the toy run logged {len(steps)} step(s): its curves draw nothing"
