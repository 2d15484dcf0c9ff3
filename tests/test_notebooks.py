"""The course's notebooks: their structure, and each one executed at the smoke preset.

Executed copies, data and figures go to a temporary folder, so running the tests
never changes the work tree.
"""
import json
import re
from pathlib import Path

import nbformat
import pytest

from matsed_lite.notebook_runner import list_notebooks, notebook_parameters, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = list_notebooks(ROOT / "notebooks")
IDS = [nb.stem for nb in NOTEBOOKS]
REQUIRED_PARAMETERS = {"PRESET", "DATA_ROOT", "OUT_DIR", "SEED"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_structure(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', need exactly 1"
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert tagged[0] == code_cells[1], "the parameters cell must be the second code cell"
    setup = nb.cells[code_cells[0]].source
    assert '"google.colab" in sys.modules' in setup and "setup(" in setup
    assert "colab.research.google.com" in nb.cells[0].source and path.name in nb.cells[0].source
    assert REQUIRED_PARAMETERS <= set(notebook_parameters(path))
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"{path.name}: cell {i} has outputs"
    assert f'start_notebook("{path.stem}"' in "".join(c.source for c in nb.cells)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("course_smoke")
    return {"data": base / "data", "out": base / "out"}


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executes_at_smoke_preset(path, smoke_run):
    out = smoke_run["out"] / path.stem
    res = run_notebook(path, out, {"PRESET": "smoke", "DATA_ROOT": str(smoke_run["data"]),
                                   "OUT_DIR": str(out), "SEED": 0}, cwd=ROOT, timeout=600)
    assert res.results["preset"] == "smoke" and res.results["notebook"] == path.stem
    assert list(out.glob("*.png")), "every notebook draws at least one figure"
    CHECKS[path.stem[:2]](res.results, out)


def _check_00(r, out):
    assert r["data_check_ok"] is True
    assert r["clips"] == {"synth_train": 24, "weak": 12, "unlabeled": 24, "validation": 12}
    assert 0 <= r["roundtrip_max_shift_s"] < r["frame_hop_s"] == pytest.approx(0.02)
    assert r["long_classes_median_s"] > 2 * r["short_classes_median_s"]
    assert r["feature_shape"] == [64, 500]
    assert len(r["broken_tsv_problems"]) == 4
    problems = " | ".join(r["broken_tsv_problems"])
    for expected in ["not before offset", "'Dgo' is not in the class list", "not_on_disk.wav",
                     "past the end"]:
        assert expected in problems
    assert all(re.search(r"row \d+", p) for p in r["broken_tsv_problems"])
    assert r["n_validation_short"] >= 1
    assert {"00_class_gallery.png", "00_clip_views.png", "00_event_lengths.png"} <= {
        p.name for p in out.glob("*.png")}


CHECKS = {"00": _check_00}


def test_every_notebook_has_a_check():
    assert {nb.name[:2] for nb in NOTEBOOKS} <= set(CHECKS)
