"""What do the encoder's frame features know? A linear probe per frame (chapter 01).

A frozen encoder is worth what a *linear* classifier can read off its frame
features: train one logistic regression per class on the frames of some clips,
score the frames of other clips, and report the frame AP per class. The same
probe on plain log-mel frames (pooled to the same frame rate) is the baseline:
an encoder that does not beat it has learnt nothing a detector could use. Run
on a folder of real recordings whose classes the encoder never saw, it asks
whether the features carry over.

    matsed-lite probe --data ROOT --preset cpu [--encoder RUN_DIR]
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.datasets import make_dataset
from ..data.features import LogMel
from ..data.labels import pool_time
from ..data.layout import infer_classes, layout_for
from ..models.frame_cache import encode_dataset
from ..models.passt_lite import load_pretrained_encoder
from ..presets import Preset
from .tagging import average_precision_per_class


def encoder_frames(dataset, encoder: torch.nn.Module, preset: Preset, device=None) -> dict:
    """{"x": (N, T, D) frame features, "y": (N, T, K) labels, "mask": (N, T)} of a
    dataset at the context frame rate."""
    cache = encode_dataset(dataset, encoder, preset, device=device, progress=False)
    return {"x": cache.frames.float(), "y": cache.strong.float(), "mask": cache.frame_mask.bool()}


@torch.no_grad()
def logmel_frames(dataset, preset: Preset) -> dict:
    """The same as ``encoder_frames`` with log-mel frames (averaged over the
    ``context_downsampling`` mel frames of each context frame) as the features."""
    logmel, f = LogMel(preset), preset.context_downsampling
    xs, ys, ms = [], [], []
    for i in range(len(dataset)):
        it = dataset[i]
        mel = logmel(it["waveform"][None])                       # (1, M, T_mel)
        t = mel.shape[-1] // f
        xs.append(mel[0, :, :t * f].reshape(mel.shape[1], t, f).mean(-1).T)
        ys.append(pool_time(it["strong"][None].float(), f)[0, :t])
        ms.append(pool_time(it["frame_mask"][None].float(), f)[0, :t] > 0.5)
    return {"x": torch.stack(xs), "y": torch.stack(ys), "mask": torch.stack(ms)}


def _flat(feats: Mapping) -> tuple[torch.Tensor, torch.Tensor]:
    m = feats["mask"].bool()
    return feats["x"][m].float(), feats["y"][m].float()


def linear_probe(train: Mapping, test: Mapping, classes: Sequence[str], steps: int = 300,
                 lr: float = 0.05, weight_decay: float = 1e-4, seed: int = 0) -> dict:
    """Train a linear layer (features -> classes) with BCE on the valid frames of
    ``train`` (full batch, Adam, features standardised with train statistics) and
    return {"per_class_ap": {class: frame AP on test}, "mAP": mean over classes with
    positives}. Deterministic for a seed."""
    x_tr, y_tr = _flat(train)
    x_te, y_te = _flat(test)
    if x_tr.shape[1] != x_te.shape[1]:
        raise ValueError(f"train features have {x_tr.shape[1]} dimensions, test {x_te.shape[1]}")
    mean, std = x_tr.mean(0), x_tr.std(0).clamp_min(1e-6)
    x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(x_tr.shape[1], len(classes), generator=g) * 0.01).requires_grad_(True)
    b = torch.zeros(len(classes), requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr, weight_decay=weight_decay)
    for _ in range(int(steps)):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(x_tr @ w + b, y_tr).backward()
        opt.step()
    with torch.no_grad():
        scores = torch.sigmoid(x_te @ w + b)
    ap = average_precision_per_class(scores, y_te)
    valid = ap[~np.isnan(ap)]
    return {"per_class_ap": {c: float(a) for c, a in zip(classes, ap)},
            "mAP": float(valid.mean()) if len(valid) else float("nan"),
            "n_train_frames": int(len(x_tr)), "n_test_frames": int(len(x_te))}


class _First:
    """The first n items of a dataset (a budget for big folders)."""

    def __init__(self, dataset, n: int):
        self.dataset, self.n = dataset, min(int(n), len(dataset))
        self.spec = getattr(dataset, "spec", None)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.dataset[i]


def probe_folder(data_root, preset: Preset, encoder: torch.nn.Module | None = None,
                 train_split: str | None = None, test_split: str = "validation",
                 max_clips: int | None = None, seed: int = 0) -> dict:
    """Frame-level linear probes on a DESED-format folder: the encoder's features
    against log-mel frames, trained on a strong split (default: the first strong
    split that is not ``test_split``) and scored on ``test_split``. ``encoder``
    None: the shipped PaSST-lite. Returns {"encoder": probe, "logmel": probe,
    "classes", "train_split", "test_split"}."""
    layout = layout_for(data_root)
    strong = [n for n, s in layout.items() if s.kind == "strong" and n != test_split]
    train_split = train_split or (strong[0] if strong else None)
    for name in (train_split, test_split):
        if name not in layout or layout[name].kind != "strong":
            raise ValueError(f"{data_root}: the probe needs strongly labelled splits; "
                             f"{name!r} is not one (splits: {', '.join(layout)})")
    classes = infer_classes([layout[train_split], layout[test_split]])
    sets = {}
    for name in (train_split, test_split):
        ds = make_dataset(layout[name], preset, classes)
        sets[name] = _First(ds, max_clips) if max_clips else ds
    encoder = load_pretrained_encoder(preset) if encoder is None else encoder
    out = {"classes": classes, "train_split": train_split, "test_split": test_split,
           "n_clips": {n: len(d) for n, d in sets.items()}}
    for kind, feats in (("encoder", lambda d: encoder_frames(d, encoder, preset)),
                        ("logmel", lambda d: logmel_frames(d, preset))):
        out[kind] = linear_probe(feats(sets[train_split]), feats(sets[test_split]), classes,
                                 seed=seed)
    return out


def format_probe(res: dict) -> str:
    """The per-class table ``matsed-lite probe`` prints."""
    lines = [f"linear frame probe: trained on {res['train_split']}, scored on {res['test_split']} "
             f"({res['n_clips']} clips); frame AP per class",
             f"{'class':<28} {'encoder':>8} {'log-mel':>8}"]
    for c in res["classes"]:
        e, m = res["encoder"]["per_class_ap"][c], res["logmel"]["per_class_ap"][c]
        lines.append(f"{c:<28} {e:8.3f} {m:8.3f}")
    lines.append(f"{'mean':<28} {res['encoder']['mAP']:8.3f} {res['logmel']['mAP']:8.3f}")
    return "\n".join(lines)
