"""Every notebook at the gpu preset, on a CUDA machine: ``make test-gpu``.

Skipped without a GPU (CI's CPU runner). The GPU runner (.github/workflows/gpu.yml,
a self-hosted runner labelled ``gpu``) executes the course with the gpu preset and
checks what must hold at that scale: the device is CUDA, shapes follow the gpu
preset's geometry (500 context frames of 20 ms, blocks of 10), and the trained
models clear quality floors. The floors are deliberately low: they were written
without a GPU run to calibrate them (no GPU was lent when this file was written),
so a first run should record its numbers and tighten them.
"""
import os
from pathlib import Path

import pytest
import torch

from matsed_lite.course.runner import list_notebooks, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = list_notebooks(ROOT / "notebooks")

pytestmark = [pytest.mark.gpu, pytest.mark.notebooks,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="session")
def gpu_run(tmp_path_factory):
    base = Path(os.environ.get("MATSED_GPU_OUT") or tmp_path_factory.mktemp("course_gpu"))
    return {"data": Path(os.environ.get("MATSED_GPU_DATA") or base / "data"), "out": base / "out"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_executes_at_gpu_preset(path, gpu_run):
    out = gpu_run["out"] / path.stem
    res = run_notebook(path, out, {"PRESET": "gpu", "DATA_ROOT": str(gpu_run["data"]),
                                   "OUT_DIR": str(out), "SEED": 0}, cwd=ROOT, timeout=3600)
    r = res.results
    assert r["preset"] == "gpu" and r["notebook"] == path.stem
    GPU_CHECKS.get(path.stem[:2], lambda r: None)(r)


def _check_02(r):
    assert r["attention_shape"] == [1, 4, 500, 500]


def _check_03(r):
    assert (r["n_blocks"], r["n_masked_blocks"]) == (50, 38)  # 500 frames, blocks of 10


def _check_04(r):
    assert r["beats_interpolation"] is True


def _check_05(r):
    assert r["final"]["stage2"]["psds1"] > 0.05 and r["final"]["crnn"]["psds1"] > 0.02


def _check_06(r):
    assert r["fusion_cost"]["ratio"] <= 1.15


GPU_CHECKS = {"02": _check_02, "03": _check_03, "04": _check_04, "05": _check_05, "06": _check_06}
