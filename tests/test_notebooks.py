"""The example notebooks run as written (small sizes), so they cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


# code cell index -> the figures it must show (a cell whose plot silently shows nothing fails)
FIGURES = {"quickstart.ipynb": {4: 1, 8: 1, 9: 1}, "mesh.ipynb": {2: 1}}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_executes(name, tmp_path, monkeypatch):
    if name == "mesh.ipynb" and not (SHARED / "meshes" / "cylinder_flow_vtu").is_dir():
        pytest.skip(f"shared mesh data not found at {SHARED}")
    monkeypatch.setenv("SURROGATE_SHARED_DATA", str(SHARED))
    monkeypatch.setenv("SURROGATE_NOTEBOOK_SIZE", "small")
    nb = nbformat.read(ROOT / "examples" / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    shown = {
        i: sum("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for i, c in enumerate(nb.cells) if c.cell_type == "code"
    }
    assert {i: n for i, n in shown.items() if n} == FIGURES[name]
    assert (tmp_path / "notebook_runs").is_dir() and not (ROOT / "examples" / "notebook_runs").exists()
