"""Checking and replacing the trained models that ship with the package.

So that the attention explorer and the later chapters show a *trained*
detector from the first run (training it takes the better part of an hour on a
laptop), the package carries the selected teacher of one ``cpu``-preset run of
``matsed-lite train`` in float16 (``weights/matsed_lite_cpu.pt``, a few MB),
with the recipe that made it (``weights/matsed_lite_cpu.json``): the command,
times, per-stage results, the validation PSDS, and a *check*, the PSDS1 the
weights score on the first ``n`` validation clips regenerated from seed 0.
The DCASE CRNN baseline trained on the same data ships the same way
(``weights/crnn_cpu.pt``). Loading them is ``models.checkpoints.load_shipped_model``.
``tests/test_shipped_model.py`` recomputes the checks: if the data generator,
the features or the model code change in a way that makes the weights stale,
the test fails and says to re-ship::

    matsed-lite ship RUN_DIR --command "..."     # (re)ship a trained run
"""
from __future__ import annotations

import json
import platform
import tempfile
from pathlib import Path

import torch

from ..data.desed_lite import generate_desed_lite
from ..files import load_torch_file, require_keys, save_torch, write_json
from ..models.checkpoints import SHIPPED_FILES, WEIGHTS_DIR, find_model
from ..presets import get_preset
from .inference import evaluate_run

CHECK_CLIPS = 48
CHECK_TOLERANCE = 0.02


def sed_check(run_or_model, preset="cpu", seed: int = 0, n: int = CHECK_CLIPS,
              workdir=None, temperature: float | None = None) -> dict:
    """PSDS1/PSDS2 (fusion 0.5, median filter, ``temperature``: the evaluate defaults
    when None) of a model on the first ``n`` validation clips of DESED-lite
    regenerated from ``seed``, on the CPU."""
    p = get_preset(preset, n_validation=n)
    ctx = tempfile.TemporaryDirectory() if workdir is None else None
    root = Path(ctx.name if ctx else workdir)
    try:
        generate_desed_lite(root, p, seed=seed, splits=["validation"], progress=False)
        res = evaluate_run(run_or_model, root, "validation", device="cpu",
                           temperature=temperature)
    finally:
        if ctx:
            ctx.cleanup()
    return {"psds1": res["psds1"], "psds2": res["psds2"], "n_clips": n, "seed": seed,
            "preset": p.name, "split": "validation", "fusion": res["fusion"], "post": res["post"],
            "temperature": res["temperature"], "tolerance": CHECK_TOLERANCE}


def ship(run_dir, command: str, out_dir=None, extra: dict | None = None) -> dict:
    """Write a run's selected model (float16) and its recipe into the package
    (as the shipped MAT-SED-lite or CRNN, whichever the run holds)."""
    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    run_dir = Path(run_dir)
    path = find_model(run_dir)
    ck = require_keys(load_torch_file(path, what="model.pt"), ("kind", "preset", "classes", "model"),
                      path, "model.pt")
    model_file, recipe_file = SHIPPED_FILES["crnn" if ck["kind"] == "crnn" else "matsed"]
    slim = {k: v for k, v in ck.items() if k != "student"}
    slim["model"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ck["model"].items()}
    model_path = save_torch(slim, out_dir / model_file.name)
    stages = {}
    for stage in ("pretrain", "stage1", "stage2", "."):
        f = run_dir / stage / "recipe.json"
        if f.is_file():
            r = json.loads(f.read_text())
            stages[ck["kind"] if stage == "." else stage] = {k: r.get(k) for k in ("epochs", "epochs_done", "best_epoch", "best",
                                                   "best_val_masked_mse", "lr", "lr_scale",
                                                   "teacher_features", "seconds", "curves",
                                                   "recipe", "geometry")
                             if k in r}
    check = sed_check(model_path, ck["preset"])
    recipe = {"command": command, "preset": ck["preset"], "classes": ck["classes"],
              "pos": ck.get("pos"), "stage": ck.get("stage"), "best_epoch": ck.get("best_epoch"),
              "selected_metrics": ck.get("metrics"), "stages": stages, "check": check,
              "torch": torch.__version__, "machine": f"{platform.machine()} "
              f"{platform.processor() or ''}".strip(), "size_bytes": model_path.stat().st_size,
              **(extra or {})}
    write_json(out_dir / recipe_file.name, recipe)
    return recipe
