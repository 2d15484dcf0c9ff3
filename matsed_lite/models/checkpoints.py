"""Saving, finding and loading trained detectors (``model.pt``), and the ones that ship.

A fine-tuning run writes ``model.pt``: the selected weights (the best epoch's
teacher), that epoch's student, and what is needed to rebuild the network
(kind, preset name, classes, positions, the encoder's kind, configuration and
frame rate: ``encoders.encoder_record``). ``load_model`` rebuilds either kind
(MAT-SED-lite, with PaSST-lite or the real PaSST-S, or the CRNN) from it, offline.

The package also ships one trained MAT-SED-lite and one CRNN (``cpu`` preset,
float16, in ``matsed_lite/weights/``), so the chapters show a trained detector
from the first run; ``evaluation.shipped`` checks they are not stale and
``matsed-lite ship`` replaces them.
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from ..files import CheckpointError, load_torch_file, require_keys, save_torch
from ..presets import PRESETS, Preset, get_preset
from .crnn import CRNN
from .matsed import MATSEDLite
from .encoders import encoder_record, rebuild_encoder
from .passt_lite import WEIGHTS_DIR

MODEL_FILE = "model.pt"
SHIPPED_MODEL = WEIGHTS_DIR / "matsed_lite_cpu.pt"
SHIPPED_MODEL_RECIPE = WEIGHTS_DIR / "matsed_lite_cpu.json"
# The DCASE CRNN baseline trained on the same data and budget: the yardstick of chapter 08.
SHIPPED_CRNN = WEIGHTS_DIR / "crnn_cpu.pt"
SHIPPED_CRNN_RECIPE = WEIGHTS_DIR / "crnn_cpu.json"
SHIPPED_FILES = {"matsed": (SHIPPED_MODEL, SHIPPED_MODEL_RECIPE),
                 "crnn": (SHIPPED_CRNN, SHIPPED_CRNN_RECIPE)}


def output_hop(model: nn.Module, preset: "Preset | str") -> float:
    """Seconds between two of the model's output frames (its detection resolution)."""
    return get_preset(preset).frame_hop_seconds * int(getattr(model, "time_downsampling", 1))


def encoder_config(encoder: nn.Module) -> dict | None:
    """The keyword arguments that rebuild the encoder's architecture (PaSST-lite's, or
    hear21passt ``PaSST``'s for the real PaSST-S)."""
    return encoder_record(encoder)["encoder_config"]


def load_model(path, map_location="cpu", which: str = "model"):
    """Rebuild a fine-tuned model from ``model.pt`` (or a run folder holding it).

    which  "model": the selected weights (the best epoch's teacher);
           "student": that epoch's student.
    Returns (model in eval mode, info dict with classes, preset, stage, ...).

    The file is read with ``weights_only=True`` (it never runs code); a file that is
    not a matsed-lite model raises ``files.CheckpointError`` naming it."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    ck = require_keys(load_torch_file(path, map_location=map_location, what="model.pt"),
                      ("kind", "preset", "classes", which), path, "model.pt")
    if ck["preset"] not in PRESETS:
        raise CheckpointError(f"{path}: unknown preset {ck['preset']!r}; not a model of this "
                              f"matsed-lite version")
    p = get_preset(ck["preset"])
    classes = list(ck["classes"])
    if ck["kind"] == "crnn":
        if "crnn_config" in ck:
            try:
                model = CRNN(p.n_mels, len(classes), **dict(ck["crnn_config"]))
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"{path}: its crnn_config does not build a CRNN "
                                      f"({str(exc).splitlines()[0][:160]})") from None
        else:   # saved before the architecture was recorded: the DCASE geometry
            # (and before the activation was recorded: the DCASE GLU CRNN)
            model = CRNN(p.n_mels, len(classes), activation=ck.get("crnn_activation", "glu"))
    else:
        encoder = rebuild_encoder(ck, p)
        model = MATSEDLite.from_preset(p, len(classes), encoder=encoder, pos=ck.get("pos", "relative"))
        if ck.get("frames_per_token"):
            model.encoder.frames_per_token = int(ck["frames_per_token"])
    try:
        model.load_state_dict(ck[which])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: its weights do not fit a {ck['kind']} model of preset "
                              f"{p.name!r} ({str(exc).splitlines()[0][:160]})") from None
    info = {k: v for k, v in ck.items() if k not in ("model", "student")}
    return model.eval(), info


def save_model(out_dir: Path, kind: str, model: nn.Module, best: dict, classes, p: Preset,
               stage, pos: str | None, extra: dict) -> Path:
    """Write ``out_dir/model.pt`` from an engine ``best.pt`` dict (its teacher is the
    selected model, its model the student), atomically."""
    ck = {"kind": kind, "stage": stage, "preset": p.name, "classes": list(classes), "pos": pos,
          # the teacher is the model we keep; a run without one keeps its student
          "model": best["teacher"] if best["teacher"] is not None else best["model"],
          "student": best["model"],
          "selected": "teacher" if best["teacher"] is not None else "student",
          "best_epoch": best["epoch"], "metrics": best["metrics"], **extra}
    enc = getattr(model, "encoder", None)
    if enc is not None:
        ck.update(encoder_record(enc))
    if kind == "crnn":
        ck["crnn_activation"] = model.activation
        ck["crnn_config"] = model.config()
    ck["frame_hop"] = output_hop(model, p)
    return save_torch(ck, out_dir / MODEL_FILE)




def find_model(run) -> Path:
    """The model.pt of a run folder (or the file itself); None: the shipped model."""
    if run is None:
        return shipped_model_path("matsed")
    run = Path(run)
    if run.is_file():
        return run
    for cand in (run / MODEL_FILE, run / "stage2" / MODEL_FILE, run / "stage1" / MODEL_FILE):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"{run}: no model.pt here nor in {run / 'stage2'} or {run / 'stage1'}; "
                            f"train one with `matsed-lite train --data ROOT --preset P --out {run}`")


def _shipped_files(kind: str):
    if kind not in SHIPPED_FILES:
        raise ValueError(f"kind must be one of {', '.join(SHIPPED_FILES)}, got {kind!r}")
    return SHIPPED_FILES[kind]


def shipped_model_path(kind: str = "matsed") -> Path:
    path = _shipped_files(kind)[0]
    if not path.is_file():
        raise FileNotFoundError(f"no shipped {kind} model at {path}")
    return path


def shipped_model_recipe(kind: str = "matsed") -> dict:
    path = _shipped_files(kind)[1]
    if not path.is_file():
        raise FileNotFoundError(f"no shipped {kind} recipe at {path}")
    return json.loads(path.read_text())


def load_shipped_model(kind: str = "matsed", map_location="cpu"):
    """(model in eval mode, float32, info) of the shipped cpu-preset MAT-SED-lite
    (kind "matsed") or CRNN baseline (kind "crnn")."""
    model, info = load_model(shipped_model_path(kind), map_location=map_location)
    return model.float().eval(), info
