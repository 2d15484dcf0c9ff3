"""The trained MAT-SED-lite that ships with the package.

So that the attention explorer and the later chapters show a *trained*
detector from the first run (training it takes the better part of an hour on a
laptop), the package carries the selected teacher of one ``cpu``-preset run of
``matsed-lite train`` in float16 (``weights/matsed_lite_cpu.pt``, a few MB),
with the recipe that made it (``weights/matsed_lite_cpu.json``): the command,
times, per-stage results, the validation PSDS, and a *check*, the PSDS1 the
weights score on the first ``n`` validation clips regenerated from seed 0.
The DCASE CRNN baseline trained on the same data ships the same way
(``weights/crnn_cpu.pt``). ``tests/test_shipped_model.py`` recomputes the checks: if the data generator,
the features or the model code change in a way that makes the weights stale,
the test fails and says to re-ship.

    python -m matsed_lite.shipped_model RUN_DIR --command "..."     # (re)ship a run
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from .presets import get_preset

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_MODEL = WEIGHTS_DIR / "matsed_lite_cpu.pt"
SHIPPED_MODEL_RECIPE = WEIGHTS_DIR / "matsed_lite_cpu.json"
# The DCASE CRNN baseline trained on the same data and budget: the yardstick of chapter 08.
SHIPPED_CRNN = WEIGHTS_DIR / "crnn_cpu.pt"
SHIPPED_CRNN_RECIPE = WEIGHTS_DIR / "crnn_cpu.json"
_FILES = {"matsed": (SHIPPED_MODEL, SHIPPED_MODEL_RECIPE), "crnn": (SHIPPED_CRNN, SHIPPED_CRNN_RECIPE)}
CHECK_CLIPS = 48
CHECK_TOLERANCE = 0.02


def _files(kind: str):
    if kind not in _FILES:
        raise ValueError(f"kind must be one of {', '.join(_FILES)}, got {kind!r}")
    return _FILES[kind]


def shipped_model_path(kind: str = "matsed") -> Path:
    path = _files(kind)[0]
    if not path.is_file():
        raise FileNotFoundError(f"no shipped {kind} model at {path}")
    return path


def shipped_model_recipe(kind: str = "matsed") -> dict:
    path = _files(kind)[1]
    if not path.is_file():
        raise FileNotFoundError(f"no shipped {kind} recipe at {path}")
    return json.loads(path.read_text())


def load_shipped_model(kind: str = "matsed", map_location="cpu"):
    """(model in eval mode, float32, info) of the shipped cpu-preset MAT-SED-lite
    (kind "matsed") or CRNN baseline (kind "crnn")."""
    from .mean_teacher import load_model

    model, info = load_model(shipped_model_path(kind), map_location=map_location)
    return model.float().eval(), info


def sed_check(run_or_model, preset="cpu", seed: int = 0, n: int = CHECK_CLIPS,
              workdir=None) -> dict:
    """PSDS1/PSDS2 (fusion 0.5, median filter: the evaluate defaults) of a model on
    the first ``n`` validation clips of DESED-lite regenerated from ``seed``, on the CPU."""
    from .desed_lite import generate_desed_lite
    from .inference import evaluate_run

    p = get_preset(preset, n_validation=n)
    ctx = tempfile.TemporaryDirectory() if workdir is None else None
    root = Path(ctx.name if ctx else workdir)
    try:
        generate_desed_lite(root, p, seed=seed, splits=["validation"], progress=False)
        res = evaluate_run(run_or_model, root, "validation", device="cpu")
    finally:
        if ctx:
            ctx.cleanup()
    return {"psds1": res["psds1"], "psds2": res["psds2"], "n_clips": n, "seed": seed,
            "preset": p.name, "split": "validation", "fusion": res["fusion"], "post": res["post"],
            "tolerance": CHECK_TOLERANCE}


def ship(run_dir, command: str, out_dir=None, extra: dict | None = None) -> dict:
    """Write a run's selected model (float16) and its recipe into the package
    (as the shipped MAT-SED-lite or CRNN, whichever the run holds)."""
    from .inference import find_model

    out_dir = Path(out_dir) if out_dir is not None else WEIGHTS_DIR
    run_dir = Path(run_dir)
    ck = torch.load(find_model(run_dir), map_location="cpu", weights_only=False)
    model_file, recipe_file = _files("crnn" if ck["kind"] == "crnn" else "matsed")
    slim = {k: v for k, v in ck.items() if k != "student"}
    slim["model"] = {k: (v.half() if v.is_floating_point() else v) for k, v in ck["model"].items()}
    model_path = out_dir / model_file.name
    tmp = model_path.with_name(model_path.name + ".part")
    torch.save(slim, tmp)
    tmp.replace(model_path)
    stages = {}
    for stage in ("pretrain", "stage1", "stage2", "."):
        f = run_dir / stage / "recipe.json"
        if f.is_file():
            r = json.loads(f.read_text())
            stages[ck["kind"] if stage == "." else stage] = {k: r.get(k) for k in ("epochs", "epochs_done", "best_epoch", "best",
                                                   "best_val_masked_mse", "lr", "lr_scale",
                                                   "teacher_features", "seconds", "curves")
                             if k in r}
    check = sed_check(model_path, ck["preset"])
    recipe = {"command": command, "preset": ck["preset"], "classes": ck["classes"],
              "pos": ck.get("pos"), "stage": ck.get("stage"), "best_epoch": ck.get("best_epoch"),
              "selected_metrics": ck.get("metrics"), "stages": stages, "check": check,
              "torch": torch.__version__, "machine": f"{platform.machine()} "
              f"{platform.processor() or ''}".strip(), "size_bytes": model_path.stat().st_size,
              **(extra or {})}
    (out_dir / recipe_file.name).write_text(json.dumps(recipe, indent=2))
    return recipe


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="ship a trained run's model into the package")
    ap.add_argument("run", type=Path)
    ap.add_argument("--command", required=True, help="the command that trained the run")
    ap.add_argument("--extra", type=Path, default=None, help="a JSON file of more recipe fields")
    args = ap.parse_args(argv)
    extra = json.loads(args.extra.read_text()) if args.extra else None
    r = ship(args.run, args.command, extra=extra)
    print(json.dumps({k: r[k] for k in ("check", "size_bytes")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
