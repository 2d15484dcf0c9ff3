"""Which encoder a run uses: the course's PaSST-lite or the real PaSST-S (the paper's).

``--encoder lite``   the shipped PaSST-lite (``passt_lite``): the smoke, cpu and gpu
                     presets, 16 kHz, 64 mels, width 128.
``--encoder passt``  hear21passt's PaSST-S behind ``passt_real.RealPaSSTFrames``:
                     the paper preset, 32 kHz, 128 PaSST mels, width 768, frame
                     features from block 10. Its AudioSet weights are downloaded
                     (once, into torch hub's cache) or read from
                     ``--passt-checkpoint FILE``; without either the error says
                     what to do.

The default follows the preset's front end: ``paper`` takes the real PaSST, the
others PaSST-lite. A fine-tuned ``model.pt`` records which encoder it holds and
its architecture (``encoder_record``), and ``rebuild_encoder`` builds it again
with random weights for the model's state dict to fill: evaluating or predicting
with a paper-preset run needs no network and no PaSST checkpoint.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..presets import Preset, get_preset
from .passt_lite import PaSSTLite, load_pretrained_encoder
from .passt_real import (HOP, N_MELS, SAMPLE_RATE, RealPaSSTFrames, build_passt_net,
                         net_config)

ENCODERS = ("lite", "passt")


def default_encoder_kind(preset: "Preset | str") -> str:
    """"passt" for a preset with PaSST's front end (``paper``), else "lite"."""
    return "passt" if get_preset(preset).frontend == "passt" else "lite"


def check_passt_preset(preset: "Preset | str") -> Preset:
    """The preset, if its audio geometry is the one PaSST-S's weights were trained on."""
    p = get_preset(preset)
    geometry = (p.frontend, p.sample_rate, p.n_mels, p.hop_length)
    if geometry != ("passt", SAMPLE_RATE, N_MELS, HOP):
        raise ValueError(
            f"--encoder passt needs PaSST-S's front end (32 kHz, {N_MELS} PaSST mels, hop "
            f"10 ms): use --preset paper; preset {p.name!r} has front end {p.frontend!r}, "
            f"{p.sample_rate} Hz, {p.n_mels} mels (its encoder is --encoder lite)")
    return p


def build_encoder(preset: "Preset | str", kind: str | None = None,
                  passt_checkpoint: "str | Path | None" = None,
                  lite_weights: "str | Path | None" = None) -> nn.Module:
    """The encoder a run starts from: ``kind`` "lite" or "passt" (default: the
    preset's, ``default_encoder_kind``). "lite" loads the shipped PaSST-lite, or
    the one in ``lite_weights`` (a ``pretrain-encoder`` run folder). "passt" loads
    the AudioSet weights from ``passt_checkpoint``, torch hub's cache, or a
    download (a ``files.SetupError`` saying what to do when none works)."""
    p = get_preset(preset)
    kind = default_encoder_kind(p) if kind is None else kind
    if kind not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {kind!r}")
    if kind == "lite":
        if passt_checkpoint is not None:
            raise ValueError("--passt-checkpoint is for --encoder passt (the lite encoder "
                             "is the shipped PaSST-lite)")
        if lite_weights is not None:
            lite_weights = Path(lite_weights)
            for name in ("encoder.pt", "recipe.json"):
                if not (lite_weights / name).is_file():
                    raise FileNotFoundError(f"--encoder-weights {lite_weights}: no {name} there "
                                            f"(a `matsed-lite pretrain-encoder --out` folder has both)")
        return load_pretrained_encoder(p, weights_dir=lite_weights)
    if lite_weights is not None:
        raise ValueError("--encoder-weights is for --encoder lite (a PaSST-lite run folder)")
    check_passt_preset(p)
    encoder = RealPaSSTFrames(checkpoint_path=passt_checkpoint, block=p.encoder_feature_block)
    encoder.frames_per_token = p.frames_per_token
    return encoder


def encoder_kind(encoder: nn.Module) -> str:
    return "passt" if isinstance(encoder, RealPaSSTFrames) else "lite"


def encoder_record(encoder: nn.Module) -> dict:
    """What ``model.pt`` stores to rebuild the encoder: its kind, its architecture
    (PaSST-lite's constructor arguments or hear21passt's ``PaSST`` ones), its
    feature block and frames per token."""
    if isinstance(encoder, RealPaSSTFrames):
        config = net_config(encoder.net)
    else:
        config = dict(encoder.config) if isinstance(getattr(encoder, "config", None), dict) else None
    return {"encoder_kind": encoder_kind(encoder), "encoder_config": config,
            "encoder_feature_block": getattr(encoder, "feature_block",
                                             getattr(encoder, "block", None)),
            "frames_per_token": getattr(encoder, "frames_per_token", None)}


def rebuild_encoder(record: dict, preset: "Preset | str") -> nn.Module:
    """An encoder of the recorded architecture with random weights (a model's state
    dict fills them), or the shipped PaSST-lite for a record without a config."""
    p = get_preset(preset)
    cfg = record.get("encoder_config")
    block = record.get("encoder_feature_block") or p.encoder_feature_block
    if record.get("encoder_kind", "lite") == "passt":
        encoder = RealPaSSTFrames(model=build_passt_net(cfg), block=block)
    elif cfg is not None:
        encoder = PaSSTLite(**cfg)
        encoder.feature_block = block
    else:
        encoder = load_pretrained_encoder(p)
    if record.get("frames_per_token"):
        encoder.frames_per_token = int(record["frames_per_token"])
    return encoder
