"""The notebook runner on tiny notebooks made here (the course's own are in test_notebooks)."""

import nbformat
import pytest

from matsed_lite.cli import main
from matsed_lite.course.runner import (NotebookFailed, format_summary, list_notebooks,
                                         run_notebooks, select_notebooks)


def _notebook(path, body: str, params: str = 'PRESET = "cpu"\nDATA_ROOT = None\nOUT_DIR = None\nSEED = 0'):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("import json, pathlib"), p, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


WRITE_RESULTS = (
    "out = pathlib.Path(OUT_DIR); out.mkdir(parents=True, exist_ok=True)\n"
    "(out / 'results.json').write_text(json.dumps({'preset': PRESET, 'seed': SEED, 'answer': 42, "
    "'ratio': 0.125}))\n"
)


@pytest.fixture
def course(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _notebook(nbdir / "00_first.ipynb", WRITE_RESULTS)
    _notebook(nbdir / "01_second.ipynb", WRITE_RESULTS + "import matplotlib\nmatplotlib.use('Agg')\n"
              "import matplotlib.pyplot as plt\nfig = plt.figure(); fig.savefig(out / '01_pic.png')\n")
    (nbdir / "helper.ipynb").write_text("{}")  # not numbered: not part of the course
    return nbdir


def test_lists_numbered_notebooks_in_order_and_selects(course):
    names = [p.name for p in list_notebooks(course)]
    assert names == ["00_first.ipynb", "01_second.ipynb"]
    assert [p.name for p in select_notebooks(list_notebooks(course), ["1"])] == ["01_second.ipynb"]
    with pytest.raises(ValueError, match="no notebook numbered 07"):
        select_notebooks(list_notebooks(course), ["07"])


def test_runs_in_order_passes_parameters_and_copies_figures(course, tmp_path):
    log = []
    results = run_notebooks("smoke", notebooks_dir=course, out=tmp_path / "out",
                            figures_dir=tmp_path / "figs", seed=3, progress=False,
                            echo=log.append)
    assert [r.name for r in results] == ["00_first", "01_second"]
    assert results[0].results == {"preset": "smoke", "seed": 3, "answer": 42, "ratio": 0.125}
    assert (tmp_path / "out" / "00_first" / "00_first.ipynb").is_file()
    assert [p.name for p in (tmp_path / "figs").iterdir()] == ["01_pic.png"]
    assert any("[2/2] 01_second.ipynb" in line for line in log)
    table = format_summary(results)
    assert "answer=42" in table and "ratio=0.125" in table and table.splitlines()[-1].startswith("total")


def test_failure_names_notebook_and_cell_and_stops(course, tmp_path):
    _notebook(course / "00_first.ipynb", "x = 1\nraise RuntimeError('broken on purpose')")
    done = []
    with pytest.raises(NotebookFailed) as err:
        run_notebooks("smoke", notebooks_dir=course, out=tmp_path / "out", progress=False,
                      echo=lambda m: None, results=done)
    msg = str(err.value)
    assert "00_first.ipynb" in msg and "cell 3 " in msg and "'x = 1'" in msg
    assert "RuntimeError: broken on purpose" in msg
    assert done == []  # stopped: 01 never ran
    assert not (tmp_path / "out" / "01_second").exists()


def test_unknown_parameter_is_an_error(course, tmp_path):
    _notebook(course / "00_first.ipynb", WRITE_RESULTS, params='PRESET = "cpu"\nOUT_DIR = None')
    with pytest.raises(NotebookFailed, match=r"DATA_ROOT, SEED are not declared"):
        run_notebooks("smoke", notebooks_dir=course, out=tmp_path / "out", progress=False,
                      echo=lambda m: None)


def test_missing_results_json_is_an_error(course, tmp_path):
    _notebook(course / "00_first.ipynb", "x = 1")
    with pytest.raises(NotebookFailed, match="wrote no .*results.json"):
        run_notebooks("smoke", notebooks_dir=course, out=tmp_path / "out", progress=False,
                      echo=lambda m: None)


def test_cli_prints_table_and_exit_codes(course, tmp_path, capsys):
    rc = main(["notebooks", "--preset", "smoke", "--notebooks-dir", str(course),
               "--out", str(tmp_path / "o"), "--only", "00"])
    out = capsys.readouterr().out
    assert rc == 0 and "00_first" in out and "01_second" not in out
    rc = main(["notebooks", "--notebooks-dir", str(tmp_path / "nowhere")])
    assert rc == 1 and "no notebooks folder" in capsys.readouterr().err


def test_course_budget_is_short_only_for_cpu_on_a_cpu():
    from matsed_lite.course import course_budget
    from matsed_lite.presets import get_preset

    cpu = get_preset("cpu")
    short = course_budget(cpu, "cpu")
    assert short["full"] is False and short["crnn_epochs"] == 0 and short["stage2_fusion_lambda"] == 0.0
    assert short["pretrain_epochs"] < cpu.pretrain_epochs and short["stage1_epochs"] <= cpu.stage1_epochs
    full = course_budget(cpu, "cuda")
    assert full["full"] is True and full["pretrain_epochs"] == cpu.pretrain_epochs
    assert full["crnn_epochs"] == cpu.crnn_epochs and full["clips_per_epoch"] is None
    smoke = course_budget("smoke", "cpu")
    assert smoke["full"] is True and smoke["stage2_epochs"] == get_preset("smoke").stage2_epochs
