"""Encoder outputs computed once per clip, for the stages that freeze the encoder (chapter 04).

Masked-reconstruction pre-training and mean-teacher stage 1 never change the
encoder, so running PaSST-lite on every clip in every epoch would recompute the
same numbers over and over (on a CPU the encoder costs more than the context
network's training step). ``encode_splits`` runs log-mel + encoder once per clip
(eval mode, no gradients) and keeps, in memory:

==============  =====================  ==========================================
field           shape, dtype           what
==============  =====================  ==========================================
frames          (N, T, D) float16      ``encoder.frame_features(mel)``
clip            (N, D) float16         ``encoder.clip_embedding(mel)``
frame_mask      (N, T) bool            True where the frame holds real audio
strong          (N, T, K) float16      frame labels (zeros unless has_strong)
weak            (N, K) float32         clip labels (zeros unless has_weak)
has_strong      (N,) bool
has_weak        (N,) bool
filenames       list of N str
splits          list of N str          the split each clip came from
==============  =====================  ==========================================

T is the context frame count (``preset.context_frames``): mask and labels are
max-pooled from the mel frame rate to it when the encoder gives fewer frames.

float16 halves the memory (cpu preset: about 2,900 clips x 250 x 128 x 2 B =
190 MB); its ~3 significant digits are far finer than what the heads learn.

A ``FrameCache`` is itself a torch ``Dataset``: item ``i`` is a dict of float32
tensors (``frames``, ``clip_embedding``, ``frame_mask``, ``strong``, ``weak``,
``has_strong``, ``has_weak``, ``index``) that the default collate batches, and
``subset(...)`` / ``split(...)`` give views of some of the clips. Feed
``batch["frames"]`` and ``batch["clip_embedding"]`` to
``MATSEDLite(frames=..., clip_embedding=...)``.

The cached features are those of the *un-augmented* clip: augmentations that act
on the audio or the log-mel (frequency warp, FilterAugment) are not possible on
cached frames; time shifts and mixup are (they act on frames and labels alike).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.features import LogMel
from ..data.labels import pool_time
from ..files import load_torch_file, require_keys, save_torch
from ..presets import Preset, get_preset
from ..runtime import pick_device


@dataclass(eq=False)
class FrameCache(Dataset):
    """Encoder frame features and clip embeddings of N clips (see the module docstring)."""

    frames: torch.Tensor
    clip: torch.Tensor
    frame_mask: torch.Tensor
    strong: torch.Tensor
    weak: torch.Tensor
    has_strong: torch.Tensor
    has_weak: torch.Tensor
    filenames: list
    splits: list

    def __post_init__(self):
        n = self.frames.shape[0]
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"FrameCache: {f.name} has {len(getattr(self, f.name))} rows, "
                                 f"frames has {n}")

    # -- Dataset --------------------------------------------------------------
    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {
            "frames": self.frames[i].float(),
            "clip_embedding": self.clip[i].float(),
            "frame_mask": self.frame_mask[i],
            "strong": self.strong[i].float(),
            "weak": self.weak[i].float(),
            "has_strong": self.has_strong[i],
            "has_weak": self.has_weak[i],
            "index": i,
        }

    # -- views ----------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return self.frames.shape[1]

    @property
    def dim(self) -> int:
        return self.frames.shape[2]

    @property
    def split_names(self) -> list[str]:
        """The splits present, in first-seen order."""
        return list(dict.fromkeys(self.splits))

    def indices(self, splits: "str | Iterable[str]") -> torch.Tensor:
        """Row indices of the clips from ``splits`` (a name or several)."""
        wanted = {splits} if isinstance(splits, str) else set(splits)
        unknown = wanted - set(self.splits)
        if unknown:
            raise KeyError(f"split(s) {sorted(unknown)} are not in this cache "
                           f"(it holds {self.split_names})")
        return torch.tensor([i for i, s in enumerate(self.splits) if s in wanted], dtype=torch.long)

    def subset(self, index: "Sequence[int] | torch.Tensor") -> "FrameCache":
        """A new cache holding rows ``index`` (tensors are indexed, i.e. copied)."""
        index = torch.as_tensor(index, dtype=torch.long)
        rows = index.tolist()
        return FrameCache(
            frames=self.frames[index], clip=self.clip[index], frame_mask=self.frame_mask[index],
            strong=self.strong[index], weak=self.weak[index], has_strong=self.has_strong[index],
            has_weak=self.has_weak[index], filenames=[self.filenames[i] for i in rows],
            splits=[self.splits[i] for i in rows])

    def split(self, splits: "str | Iterable[str]") -> "FrameCache":
        """The clips of one or several splits, as their own cache."""
        return self.subset(self.indices(splits))

    def nbytes(self) -> int:
        return sum(getattr(self, f.name).element_size() * getattr(self, f.name).nelement()
                   for f in fields(self) if torch.is_tensor(getattr(self, f.name)))

    def __repr__(self) -> str:
        counts = {s: self.splits.count(s) for s in self.split_names}
        return (f"FrameCache({len(self)} clips {counts}, frames {tuple(self.frames.shape)} "
                f"{self.frames.dtype}, {self.nbytes() / 2**20:.0f} MiB)")

    # -- persistence ----------------------------------------------------------
    def save(self, path) -> Path:
        """Write the cache to one file (``torch.save`` of its fields, atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_torch({f.name: getattr(self, f.name) for f in fields(self)}, path)

    @classmethod
    def load(cls, path) -> "FrameCache":
        """Read a saved cache (``weights_only``: never runs code)."""
        data = require_keys(load_torch_file(path, what="frame cache"),
                            [f.name for f in fields(cls)], path, "frame cache")
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    @staticmethod
    def concat(caches: Sequence["FrameCache"]) -> "FrameCache":
        """One cache holding the rows of several, in order."""
        if not caches:
            raise ValueError("nothing to concatenate")
        out = {}
        for f in fields(FrameCache):
            parts = [getattr(c, f.name) for c in caches]
            out[f.name] = torch.cat(parts) if torch.is_tensor(parts[0]) else sum(parts, [])
        return FrameCache(**out)


def frames_and_clip(encoder: torch.nn.Module, mel: torch.Tensor):
    """(frame features (B, T, D), clip embedding (B, D)) of log-mels (B, n_mels, T):
    one pass for PaSST-lite (``PaSSTLite.frames_and_clip``) and for the real
    PaSST wrapper (``forward_mel``), the two public calls for other encoders."""
    if hasattr(encoder, "frames_and_clip"):
        return encoder.frames_and_clip(mel)
    if hasattr(encoder, "forward_mel"):  # passt_real: mels in, dict out
        out = encoder.forward_mel(mel, clip=True)
        return out["frames"], out["clip_embedding"]
    return encoder.frame_features(mel), encoder.clip_embedding(mel)


# The cache's pass: the same, without gradients.
encode_frames_and_clip = torch.no_grad()(frames_and_clip)


def encode_dataset(dataset: Dataset, encoder: torch.nn.Module, preset: "Preset | str",
                   split: str | None = None, batch_size: int = 32, device=None,
                   dtype: torch.dtype = torch.float16, progress: bool = True,
                   num_workers: int = 0) -> FrameCache:
    """Encode one dataset (items as ``datasets.SEDDataset`` gives them) into a FrameCache.

    The encoder is put in eval mode for the pass (patchout and dropout off, so
    the features are deterministic) and restored to its previous mode after."""
    p = get_preset(preset)
    device = pick_device(str(device)) if device is not None else pick_device()
    split = split or getattr(getattr(dataset, "spec", None), "name", "data")
    logmel = LogMel(p).to(device)
    was_training = encoder.training
    encoder.eval()
    enc_device = next(encoder.parameters()).device
    encoder.to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    out = {k: [] for k in ("frames", "clip", "frame_mask", "strong", "weak", "has_strong",
                           "has_weak", "filenames")}
    try:
        for batch in tqdm(loader, desc=f"encode {split}", disable=not progress, leave=False):
            mel = logmel(batch["waveform"].to(device))
            frames, clip = encode_frames_and_clip(encoder, mel)
            # labels and mask at the frames' rate (e.g. 250 context frames from 500 mel frames)
            factor = max(1, batch["strong"].shape[1] // frames.shape[1])
            T = frames.shape[1]
            out["frames"].append(frames.to("cpu", dtype))
            out["clip"].append(clip.to("cpu", dtype))
            out["frame_mask"].append(pool_time(batch["frame_mask"].bool(), factor)[:, :T])
            out["strong"].append(pool_time(batch["strong"], factor)[:, :T].to(torch.float16))
            out["weak"].append(batch["weak"].float())
            out["has_strong"].append(torch.as_tensor(batch["has_strong"]).bool())
            out["has_weak"].append(torch.as_tensor(batch["has_weak"]).bool())
            out["filenames"].extend(batch["filename"])
    finally:
        encoder.to(enc_device).train(was_training)
    if not out["filenames"]:
        raise ValueError(f"split {split!r} has no clips to encode")
    names = out.pop("filenames")
    return FrameCache(**{k: torch.cat(v) for k, v in out.items()}, filenames=names,
                      splits=[split] * len(names))


def encode_splits(datasets: Mapping[str, Dataset], encoder: torch.nn.Module,
                  preset: "Preset | str", batch_size: int = 32, device=None,
                  dtype: torch.dtype = torch.float16, progress: bool = True,
                  num_workers: int = 0) -> FrameCache:
    """Encode several splits ({name: dataset}, e.g. from ``datasets.make_datasets``)
    into one FrameCache; ``cache.split(name)`` gets one back."""
    if not datasets:
        raise ValueError("no datasets to encode")
    return FrameCache.concat([
        encode_dataset(ds, encoder, preset, split=name, batch_size=batch_size, device=device,
                       dtype=dtype, progress=progress, num_workers=num_workers)
        for name, ds in datasets.items()])
