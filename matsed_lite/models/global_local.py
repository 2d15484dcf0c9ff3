"""Global-local feature fusion: the encoder looks at the whole clip and at short windows (chapter 06).

PaSST was pre-trained on 10 s clips, where it learned to *tag*: its tokens
carry a lot of "what is in this clip" and less of "what happens right here".
MAT-SED therefore also runs the encoder on short overlapping windows of the
log-mel (5.12 s), where every token sees only its own neighbourhood, and mixes
the two frame sequences *before* the context network:

    Z = lambda * Z_local + (1 - lambda) * Z_global          (lambda = 0.5)

Z_global is the ordinary frame-feature sequence of the whole clip. Z_local is
built by overlap-add: each window's frame features are added into a buffer at
the window's offset, and every frame is divided by the number of windows that
covered it. The windows start every ``hop`` mel frames, and one more window is
placed flush with the end of the clip whenever the hops do not land there, so
every frame is covered (the official code leaves the last 10-14 frames at zero).

All windows of all clips of a batch go through the encoder in ONE batched call
(B clips x W windows as one batch of B*W short inputs): on a GPU that is one
large kernel launch sequence instead of W small ones, on a CPU one large matmul
per layer instead of many.

Where fusion is used (as in the paper): by the teacher during stage 2 of
fine-tuning (hop 0.49 s), and by the model at validation and test (hop 0.31 s
at test). The student always trains on global features only. The clip
embedding (the AT head's input) always comes from the global pass.

Lite geometry: windows and hops are the paper's *durations* at the preset's mel
frame rate, rounded to whole context frames (at 5 frames per token one context
frame is 2 mel frames): 256 mel frames of 20 ms (5.12 s), hops 16 (0.32 s) and
24 (0.48 s).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from .frame_cache import frames_and_clip
from ..presets import Preset, get_preset

DEFAULT_LAMBDA = 0.5
# The paper's settings in seconds (512, 31 and 49 frames of 10 ms).
WINDOW_SECONDS = 5.12
TEST_HOP_SECONDS = 0.31
TRAIN_HOP_SECONDS = 0.49   # validation and the training-time teacher


def window_starts(n_frames: int, window: int, hop: int) -> list[int]:
    """Start frames of the windows over a sequence of ``n_frames``.

    Every ``hop`` frames from 0, plus one window ending exactly at ``n_frames``
    when the hops miss the end, so the union covers every frame. A sequence no
    longer than one window gets one window at 0 (the caller shortens it)."""
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be at least 1 frame, got window={window}, hop={hop}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, hop))
    if starts[-1] != n_frames - window:
        starts.append(n_frames - window)
    return starts


def _round_to(x: float, multiple: int) -> int:
    return max(multiple, int(round(x / multiple)) * multiple)


@dataclass(frozen=True)
class FusionWindows:
    """Window and hops in mel frames, for one preset's frame rate."""

    window: int
    test_hop: int
    train_hop: int

    @classmethod
    def for_preset(cls, preset: "Preset | str") -> "FusionWindows":
        """The paper's durations at the preset's frame rate, in whole context frames."""
        p = get_preset(preset)
        step = p.context_downsampling
        to_frames = lambda s: _round_to(s / p.frame_hop_seconds, step)  # noqa: E731
        return cls(to_frames(WINDOW_SECONDS), to_frames(TEST_HOP_SECONDS),
                   to_frames(TRAIN_HOP_SECONDS))


def _frame_features(encoder, mel: Tensor) -> Tensor:
    """Frame features of log-mels, for PaSST-lite or the real PaSST wrapper."""
    if hasattr(encoder, "forward_mel"):  # passt_real.PaSSTFrames: mels in, dict out
        return encoder.forward_mel(mel, clip=False)["frames"]
    return encoder.frame_features(mel)


def local_features(encoder, mel: Tensor, window: int, hop: int) -> Tensor:
    """Z_local: (B, T_ctx, D) frame features of log-mels (B, n_mels, T) from
    overlapping windows, overlap-added and averaged (see the module docstring; chapter 06
    builds it as a loop).

    ``window`` and ``hop`` are in mel frames and must be whole context frames
    (multiples of the encoder's stride / frames_per_token). One encoder call
    for all B x W windows."""
    if mel.dim() != 3:
        raise ValueError(f"mel must be (B, n_mels, T), got shape {tuple(mel.shape)}")
    B, n_mels, T = mel.shape
    stride = int(getattr(encoder, "stride", 10))
    down = stride // int(getattr(encoder, "frames_per_token", stride))
    if window % down or hop % down:
        raise ValueError(f"window ({window}) and hop ({hop}) must be multiples of {down} mel "
                         f"frames (one context frame)")
    window = min(window, T - T % down) if T >= down else T
    starts = window_starts(T, window, hop)
    if starts[-1] % down:  # the flush-right window must start on a context frame too
        starts[-1] -= starts[-1] % down
    W = len(starts)
    chunks = torch.stack([mel[..., s:s + window] for s in starts], dim=1)  # (B, W, M, window)
    feats = _frame_features(encoder, chunks.reshape(B * W, n_mels, window))
    w_ctx, D = feats.shape[1], feats.shape[2]
    T_ctx = T // down
    offsets = torch.tensor([s // down for s in starts], device=mel.device)
    index = (offsets[:, None] + torch.arange(w_ctx, device=mel.device)[None, :]).reshape(-1)
    keep = index < T_ctx
    feats = feats.reshape(B, W * w_ctx, D)[:, keep]
    index = index[keep]
    total = torch.zeros(B, T_ctx, D, dtype=feats.dtype, device=feats.device)
    total.index_add_(1, index, feats)
    count = torch.bincount(index, minlength=T_ctx).to(feats.dtype)
    if bool((count == 0).any()):  # cannot happen with window_starts; a guard for the tail
        raise RuntimeError(f"windows left {int((count == 0).sum())} frames uncovered")
    return total / count[None, :, None]


def fused_features(encoder, mel: Tensor, lam: float = DEFAULT_LAMBDA, window: int = 256,
                   hop: int = 16) -> tuple[Tensor, Tensor]:
    """(lambda * Z_local + (1 - lambda) * Z_global, clip embedding of the global pass).

    lambda 0 is the global pass alone (no windows are computed); lambda 1 the
    local features alone."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"fusion lambda must be in [0, 1], got {lam}")
    frames, clip = frames_and_clip(encoder, mel)
    if lam == 0.0:
        return frames, clip
    local = local_features(encoder, mel, window, hop)
    return lam * local + (1.0 - lam) * frames, clip


class GlobalLocalFusion:
    """The fusion as a features hook: ``fusion(model, mel) -> (frames, clip_embedding)``.

    Pass it as ``teacher_features`` to ``mean_teacher.finetune`` (stage 2's
    teacher and validation) or as ``features`` to ``mean_teacher.predict_frames``."""

    def __init__(self, lam: float = DEFAULT_LAMBDA, window: int = 256, hop: int = 16):
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"fusion lambda must be in [0, 1], got {lam}")
        self.lam, self.window, self.hop = float(lam), int(window), int(hop)
        self.__name__ = f"global_local(lambda={self.lam:g}, window={self.window}, hop={self.hop})"

    @classmethod
    def for_preset(cls, preset: "Preset | str", lam: float = DEFAULT_LAMBDA,
                   when: str = "test") -> "GlobalLocalFusion":
        """The preset's window with the test hop (0.31 s) or the training hop (0.49 s)."""
        if when not in ("test", "train"):
            raise ValueError(f"when must be 'test' or 'train', got {when!r}")
        w = FusionWindows.for_preset(preset)
        return cls(lam, w.window, w.test_hop if when == "test" else w.train_hop)

    def describe(self) -> dict:
        return {"lambda": self.lam, "window": self.window, "hop": self.hop}

    def __call__(self, model, mel: Tensor) -> tuple[Tensor, Tensor]:
        return fused_features(model.encoder, mel, self.lam, self.window, self.hop)

    def __repr__(self) -> str:
        return self.__name__


class LambdaSweep:
    """A features hook that scores one split at several fusion lambdas for the price
    of one: the first sweep runs the encoder (global pass and windows) on each
    batch and keeps them; later sweeps, over the same batches in the same order,
    only mix them. The mix is ``fused_features``' own expression, so every lambda's
    features are those of ``GlobalLocalFusion``. Holds two feature maps per clip in
    memory (tens of MB for a course split). ``start(lam)`` before each sweep
    (``evaluation.inference.score_split_lambdas``)."""

    def __init__(self, window: int = 256, hop: int = 16):
        self.window, self.hop, self.lam = int(window), int(hop), DEFAULT_LAMBDA
        self.kept: list = []
        self.calls = 0

    def start(self, lam: float) -> None:
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"fusion lambda must be in [0, 1], got {lam}")
        self.lam, self.calls = float(lam), 0

    def __call__(self, model, mel):
        if self.calls == len(self.kept):
            frames, clip = frames_and_clip(model.encoder, mel)
            self.kept.append((frames, clip, local_features(model.encoder, mel, self.window,
                                                           self.hop)))
        frames, clip, local = self.kept[self.calls]
        self.calls += 1
        return self.lam * local + (1.0 - self.lam) * frames, clip


@torch.no_grad()
def time_fusion(encoder, mel: Tensor, window: int, hop: int, lam: float = DEFAULT_LAMBDA,
                repeats: int = 5) -> dict:
    """Time a fused pass against the encoder work it must do, side by side.

    global   ``frames_and_clip`` on the clips; windows: the encoder on the B x W
    windows, already cut; fused: ``fused_features``. They take turns within every
    repeat (so drifting load hits them alike); medians over ``repeats`` after a
    warm-up. Returns {"ms": {global, windows, fused}, "ratio": fused / (global + windows),
    "windows": W}. Inference, no gradients."""
    starts = window_starts(mel.shape[-1], window, hop)
    windows = torch.stack([mel[..., s:s + window] for s in starts], 1).reshape(
        -1, mel.shape[1], window)
    cuda = mel.is_cuda
    jobs = {"global": lambda: frames_and_clip(encoder, mel),
            "windows": lambda: _frame_features(encoder, windows),
            "fused": lambda: fused_features(encoder, mel, lam, window, hop)}
    times: dict = {k: [] for k in jobs}
    for fn in jobs.values():
        fn()
    for _ in range(repeats):
        for k, fn in jobs.items():
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize()
            times[k].append(time.perf_counter() - t0)
    ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
    return {"ms": ms, "ratio": ms["fused"] / (ms["global"] + ms["windows"]), "windows": len(starts)}
