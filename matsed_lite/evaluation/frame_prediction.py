"""Frame predictions of a model over a store of clips: the first step of every evaluation.

``run_model`` runs either kind of detector on either kind of input (a
MAT-SED-lite on log-mels or on cached encoder frames, the CRNN on log-mels);
``predict_frames`` collects frame probabilities (and clip probabilities for
the soft weak mask) of every clip, keyed by file name, optionally through a
features hook (global-local fusion) and at a temperature.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..data.stores import collate_items


def run_model(model: nn.Module, inputs: dict, key_padding_mask: Tensor | None = None,
              temperature: float = 1.0) -> dict:
    """Run a MAT-SED model on mels or on cached frames, or a CRNN on mels
    (``temperature`` divides MAT-SED's logits; the CRNN has none). A model in
    DistributedDataParallel (training under torchrun) is told apart by its ``.module``."""
    if "frames" in inputs:
        return model(frames=inputs["frames"], clip_embedding=inputs["clip_embedding"],
                     key_padding_mask=key_padding_mask, temperature=temperature)
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    if not hasattr(inner, "context"):  # the CRNN: mels in, its own frame rate out
        return model(inputs["mel"])
    return model(mel=inputs["mel"], key_padding_mask=key_padding_mask, temperature=temperature)


def padding_mask(frame_mask: Tensor) -> Tensor | None:
    """Key padding mask for attention, or None when no frame is padding (the fast path)."""
    return None if bool(frame_mask.all()) else ~frame_mask.bool()



@torch.no_grad()
def predict_frames(model: nn.Module, store, device, batch_size: int = 16,
                   features: Callable | None = None, amp_context=None,
                   with_clip: bool = False, temperature: float = 1.0):
    """Frame probabilities (T_out, K) of every clip of a store, keyed by file name.

    with_clip  also return the clip-level (linear-softmax pooled) probabilities
               (K,) per clip: ``(frames, clips)``, for the soft weak mask.
    temperature divides the logits (MAT-SED evaluates at 0.5; 1: as trained)."""
    was = model.training
    model.eval()
    out, clips = {}, {}
    names = store.filenames
    try:
        for start in range(0, len(store), batch_size):
            items = [store.item(i) for i in range(start, min(start + batch_size, len(store)))]
            b = collate_items(items)
            inputs = {k: b[k].to(device) for k in ("mel", "frames", "clip_embedding") if k in b}
            kpm = padding_mask(b["frame_mask"].to(device)) if "frames" in inputs else None
            with amp_context or nullcontext():
                if features is not None and "mel" in inputs:
                    frames, clip = features(model, inputs["mel"])
                    inputs = {"frames": frames, "clip_embedding": clip}
                o = run_model(model, inputs, kpm, temperature)
            probs = o["frame_probs"].float().cpu().numpy()
            pooled = o["clip_probs"].float().cpu().numpy()
            for j, p in enumerate(probs):
                out[names[start + j]] = p
                clips[names[start + j]] = pooled[j]
    finally:
        model.train(was)
    return (out, clips) if with_clip else out


