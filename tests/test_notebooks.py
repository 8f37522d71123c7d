"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel at the quick scale (TFNETS_QUICK=1).

Each `notebooks/*.py` (jupytext "percent" format) is converted to a notebook and executed cell by cell with nbclient;
a cell that raises fails the test with the notebook, the cell's number and its first line named. Runs and exports go
to a temporary folder (`TFNETS_NOTEBOOK_OUT`, `TFNETS_NOTEBOOK_EXPORT`), never into the checkout. Skipped with the
reason when the `notebooks` extra (jupytext, nbclient, ipykernel, nbformat) is not installed; `.ci/run` installs it.
"""

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.py") if not p.name.startswith(("_", "nbsupport")))
EXTRA = ("jupytext", "nbclient", "ipykernel", "nbformat")
MISSING = [name for name in EXTRA if importlib.util.find_spec(name) is None]
# A quick notebook takes well under this on 2 cores; the limit only stops a hung kernel.
CELL_TIMEOUT_S = 600

pytestmark = [
    pytest.mark.slow,
    pytest.mark.notebooks,
    pytest.mark.skipif(bool(MISSING), reason=f"the notebooks extra is not installed (missing: {', '.join(MISSING)})"),
]


def test_one_notebook_per_handout_and_no_helper_taken_for_one():
    assert {p.stem for p in NOTEBOOKS} == {
        "ece421_notmnist",
        "cs155_deep_learning",
        "eee443_catcar",
        "eee443_trigrams",
        "cs231n_fc_nets",
    }


def first_line(cell):
    return next((line for line in cell.source.splitlines() if line.strip()), "")[:80]


def execute(path, tmp_path, monkeypatch):
    """Run the notebook made from `path` in a fresh kernel started in the repository root; returns the executed
    notebook. A raising cell fails the test naming the cell."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("TFNETS_QUICK", "1")
    monkeypatch.setenv("TFNETS_NOTEBOOK_OUT", str(tmp_path / "runs"))
    monkeypatch.setenv("TFNETS_NOTEBOOK_EXPORT", str(tmp_path / "saved_models"))
    # The kernel imports this checkout's tfnets and apps, whatever is installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = jupytext.read(path)
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    failure = None
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as err:
                failure = f"{path.name}: cell {index} ({first_line(cell)!r}) raised {err.ename}: {err.evalue}"
                break
    if failure:
        # Failed outside the except block: one message naming the cell, not nbclient's chained traceback.
        pytest.fail(failure, pytrace=False)
    return notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_at_the_quick_scale(path, data_dir, tmp_path, monkeypatch):
    notebook = execute(path, tmp_path, monkeypatch)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    # Every notebook shows figures and tables inline, not only files in a run folder.
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} shows no figure"
    assert any("|---|" in o.get("data", {}).get("text/markdown", "") for o in outputs), f"{path.name} shows no table"
    # Nothing was written into the checkout: the runs went to the temporary folder.
    assert (tmp_path / "runs").is_dir()
