"""What a run folder keeps between sessions: checkpoints, RNG states, the run's settings.

Checkpoints hold only tensors, numbers, strings, lists, tuples and dicts, so
they load with ``torch.load(weights_only=True)`` (``files.load_torch_file``):
a checkpoint someone hands over can never run code. The RNG states are stored
in that form too (Python's as a list of ints, NumPy's as its parts).

``check_settings`` is the one rule every resumable stage follows: a run's
settings are written next to its checkpoints, and ``--resume`` with other
settings is refused, naming each difference, instead of continuing the old
weights under new settings.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import CheckpointError, load_torch_file, require_keys, write_json

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
SETTINGS_FILE = "settings.json"
# Recorded but allowed to change on resume: where the data folder lives.
MOVABLE = ("data_root",)


def rng_states() -> dict:
    """Python, NumPy, torch (and CUDA) RNG states as plain data."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"python": {"version": int(version), "state": [int(x) for x in internal],
                         "gauss": gauss},
              "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                        "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = list(torch.cuda.get_rng_state_all())
    return states


def set_rng_states(states: dict) -> None:
    py, npy = states["python"], states["numpy"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    np.random.set_state((npy["kind"], np.asarray(npy["keys"], dtype=np.int64).astype(np.uint32),
                         npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read an engine checkpoint (a dict; ``"model"`` and ``"teacher"`` hold state dicts)
    without running code; a foreign or broken file raises ``CheckpointError``."""
    ck = load_torch_file(path, map_location=map_location, what="training checkpoint")
    return require_keys(ck, ("model", "epoch"), path, "training checkpoint")


def plain(value: Any) -> Any:
    """``value`` as JSON data (tuples as lists, paths as strings), for comparing settings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def check_settings(run_dir, settings: dict, resume: bool, file: str = SETTINGS_FILE) -> bool:
    """Refuse a resume whose settings differ from the run's; record them otherwise.

    ``run_dir`` holds (or will hold) the engine's checkpoints. With ``resume`` and a
    ``last.pt`` there, the settings saved by the run are compared with ``settings``
    (``data_root`` may move) and any difference raises ValueError naming it.
    Writes ``run_dir/file``. Returns whether a checkpoint will be resumed."""
    run_dir = Path(run_dir)
    settings = plain(settings)
    path = run_dir / file
    resuming = bool(resume and (run_dir / LAST_CHECKPOINT).is_file())
    if resuming and path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise CheckpointError(f"{path}: not readable JSON; cannot tell which settings the "
                                  f"run used. Start a new run in another --out") from None
        keys = [k for k in {**saved, **settings} if k not in MOVABLE]
        diff = [k for k in keys if saved.get(k) != settings.get(k)]
        if diff:
            shown = "; ".join(f"{k}: run {saved.get(k)!r}, now {settings.get(k)!r}" for k in diff)
            raise ValueError(f"cannot resume {run_dir}: it was started with other settings "
                             f"({shown}). Use the same settings, or a new --out.")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, settings)
    return resuming


def previous_run(out_dir) -> list[Path]:
    """The files of an earlier run in ``out_dir`` (checkpoints, model, context weights),
    searched one level down too (``train``'s pretrain/, stage1/, stage2/, run/)."""
    out_dir = Path(out_dir)
    names = (LAST_CHECKPOINT, BEST_CHECKPOINT, "model.pt", "context.pt", "encoder.pt")
    found = [out_dir / n for n in names if (out_dir / n).is_file()]
    if out_dir.is_dir():
        for sub in sorted(p for p in out_dir.iterdir() if p.is_dir()):
            found += previous_run(sub) if sub.name in ("run", "pretrain", "stage1", "stage2") \
                else []
    return found
