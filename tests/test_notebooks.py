"""The example notebooks run as written (small sizes), so they cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.parametrize("name", ["quickstart.ipynb", "mesh.ipynb"])
def test_notebook_executes(name, tmp_path, monkeypatch):
    if name == "mesh.ipynb" and not (SHARED / "meshes" / "cylinder_flow_vtu").is_dir():
        pytest.skip(f"shared mesh data not found at {SHARED}")
    monkeypatch.setenv("SURROGATE_SHARED_DATA", str(SHARED))
    monkeypatch.setenv("SURROGATE_NOTEBOOK_SIZE", "small")
    nb = nbformat.read(ROOT / "examples" / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
