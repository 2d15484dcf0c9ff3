"""The DCASE 2023 Task 4 baseline CRNN, the yardstick MAT-SED is compared with (chapter 05).

log-mel (B, n_mels, T)
  -> per-instance min-max normalisation to [0, 1]
  -> 7 conv blocks: Conv 3x3 -> BatchNorm (eps 1e-3) -> GLU (or ReLU) -> Dropout -> AvgPool (time, freq)
     filters 16, 32, 64, 128, 128, 128, 128; time pooled x2 twice (x4 in all),
     frequency pooled x2 until one bin is left
  -> (B, T/4, 128) -> 2-layer bidirectional GRU, 128 per direction -> Dropout
  -> strong: sigmoid(Linear(256 -> K)) per frame
  -> weak:   attention pooling over time of the strong output

It is what "a conventional SED model, trained from scratch" looks like: about
a million parameters, against MAT-SED's pre-trained transformer encoder.

Two details follow the baseline's code rather than its description:
* GLU: out = Linear_c(x) * sigmoid(x), a 1x1 linear map over channels gated
  by the input itself (not the split-channel GLU of language models).
* Attention pooling: the attention logits dense(x) (B, T, K) go through a
  softmax over the *classes* (dim -1), are clamped to >= 1e-7, and the clip
  score is sum_t(strong * a) / sum_t(a). Dividing by sum_t(a) makes it a
  weighted average over time whatever the softmax axis; ``attention_softmax=
  "time"`` gives the textbook softmax over time instead.

``activation="relu"`` puts a ReLU where the GLU is, the one change the lite
presets make (``Preset.crnn_activation``). Measured on DESED-lite cpu, plain
supervised (strong-frame BCE, 12 clips a step, one seed; validation frame mAP;
``benchmarks/crnn_blocks.py``): after 150 steps GLU 0.29, ReLU 0.37, with the
short classes (alarm, cat, dog, speech) near chance (0.06-0.12) with GLU and
0.18-0.29 with ReLU; after 450 steps ReLU 0.72 (every class 0.46-0.95). Max pooling, 40 ms output
frames and dropping the min-max scaling did not help. The baseline trains 200
epochs; at a budget of a few hundred steps its GLU blocks barely start on
short events.

The baseline's BatchNorm has momentum 0.99 in PyTorch's convention (a Keras
port: running statistics follow almost only the last batch); here PyTorch's
default 0.1 is used, the sensible reading.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..presets import get_preset

DCASE_FILTERS = (16, 32, 64, 128, 128, 128, 128)
DCASE_POOLS = ((2, 2), (2, 2), (1, 2), (1, 2), (1, 2), (1, 2), (1, 2))


class GLU(nn.Module):
    """The baseline's gated linear unit: Linear over channels, gated by sigmoid(x)."""

    def __init__(self, channels: int):
        super().__init__()
        self.linear = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x) * torch.sigmoid(x)


def frequency_pools(n_mels: int, n_blocks: int = len(DCASE_POOLS),
                    time_pools=(2, 2, 1, 1, 1, 1, 1)) -> tuple:
    """DCASE pools with the frequency pooling adapted to ``n_mels``.

    Each block halves the frequency axis (floor) while more than one bin is
    left, and pools by 1 after: 128 mels (the baseline) pool in all 7 blocks,
    64 mels in the first 6 and the last block keeps its single bin. The time
    pooling stays the baseline's (x2, x2, then 1): 4x fewer frames."""
    if len(time_pools) != n_blocks:
        raise ValueError(f"{len(time_pools)} time pools for {n_blocks} blocks")
    pools, f = [], int(n_mels)
    for t in time_pools:
        if f > 1:
            pools.append((int(t), 2))
            f //= 2
        else:
            pools.append((int(t), 1))
    if f != 1:
        raise ValueError(f"{n_blocks} blocks of frequency pooling x2 cannot reduce {n_mels} mel bins "
                         f"to 1 (left: {f}); use more blocks or fewer mels")
    return tuple(pools)


class CRNN(nn.Module):
    """DCASE 2023 baseline CRNN. ``forward(mel)`` returns the keys of
    ``MATSEDLite.forward`` that apply:

    frame_logits (B, T', K), frame_probs (B, T', K), clip_probs (B, K)

    with T' = T // time_downsampling (4): frame j covers log-mel frames
    [4j, 4j + 4), so its hop is 4x the log-mel hop (80 ms on the lite
    presets, 125 frames per 10 s). There is no audio-tagging head, so no
    ``at_probs``. ``pools=None`` adapts the frequency pooling to n_mels
    (``frequency_pools``)."""

    def __init__(self, n_mels: int, n_classes: int, filters=DCASE_FILTERS, pools=None,
                 rnn_hidden: int = 128, rnn_layers: int = 2, dropout: float = 0.5,
                 rnn_dropout: float = 0.0, attention_softmax: str = "classes",
                 activation: str = "glu"):
        super().__init__()
        if activation not in ("glu", "relu"):
            raise ValueError(f"activation must be 'glu' or 'relu', got {activation!r}")
        if pools is None:
            pools = frequency_pools(n_mels, len(filters))
        pools = tuple(tuple(int(v) for v in p) for p in pools)
        if len(pools) != len(filters):
            raise ValueError(f"{len(pools)} pools for {len(filters)} conv blocks")
        f = n_mels
        for _, pf in pools:
            f //= pf
        if f != 1:
            raise ValueError(f"pools {pools} reduce {n_mels} mel bins to {f}, not 1; "
                             f"pass pools=None to adapt them (frequency_pools)")
        if attention_softmax not in ("classes", "time"):
            raise ValueError(f"attention_softmax must be 'classes' or 'time', got {attention_softmax!r}")
        self.n_mels, self.n_classes = n_mels, n_classes
        self.pools = pools
        self.attention_softmax = attention_softmax
        self.activation = activation
        self.time_downsampling = 1
        for pt, _ in pools:
            self.time_downsampling *= pt

        blocks, c_in = [], 1
        for c_out, pool in zip(filters, pools):
            blocks.append(nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
                nn.BatchNorm2d(c_out, eps=1e-3),
                GLU(c_out) if activation == "glu" else nn.ReLU(),
                nn.Dropout(dropout),
                nn.AvgPool2d(pool),
            ))
            c_in = c_out
        self.cnn = nn.Sequential(*blocks)
        self.rnn = nn.GRU(c_in, rnn_hidden, num_layers=rnn_layers, batch_first=True,
                          bidirectional=True, dropout=rnn_dropout if rnn_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(2 * rnn_hidden, n_classes)
        self.dense_softmax = nn.Linear(2 * rnn_hidden, n_classes)

    @classmethod
    def from_preset(cls, preset, n_classes: int, **kwargs) -> "CRNN":
        """The baseline for a preset's log-mels: 64 mels (lite presets) pool the
        frequency axis in 6 blocks, 128 (paper) in all 7; the activation is the
        preset's ``crnn_activation`` unless given."""
        p = get_preset(preset)
        kwargs.setdefault("activation", p.crnn_activation)
        return cls(p.n_mels, n_classes, **kwargs)

    @staticmethod
    def normalise(mel: Tensor) -> Tensor:
        """Per-instance min-max to [0, 1], as the DCASE baseline's scaler does:
        each clip's features are shifted and scaled by its own min and max, so
        loudness and recording gain stop mattering. (The baseline applies it to
        dB amplitudes clamped to [-50, 80]; our log-mel is an affine function
        of log power, and min-max removes any affine change.)"""
        flat = mel.flatten(1)
        lo = flat.min(dim=1).values.view(-1, *([1] * (mel.dim() - 1)))
        hi = flat.max(dim=1).values.view(-1, *([1] * (mel.dim() - 1)))
        return (mel - lo) / (hi - lo).clamp_min(1e-8)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, mel: Tensor, temperature: float = 1.0) -> dict:
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"mel must be (B, {self.n_mels}, T), got {tuple(mel.shape)}")
        if mel.shape[-1] < self.time_downsampling:
            raise ValueError(f"need at least {self.time_downsampling} frames, got {mel.shape[-1]}")
        x = self.normalise(mel).transpose(1, 2).unsqueeze(1)   # (B, 1, T, F)
        x = self.cnn(x)                                          # (B, C, T', 1)
        x = x.squeeze(-1).transpose(1, 2)                        # (B, T', C)
        x, _ = self.rnn(x)
        x = self.dropout(x)
        frame_logits = self.dense(x) / temperature
        frame_probs = torch.sigmoid(frame_logits)
        att = self.dense_softmax(x)
        att = torch.softmax(att, dim=-1 if self.attention_softmax == "classes" else 1)
        att = att.clamp(min=1e-7, max=1.0)
        clip_probs = (frame_probs * att).sum(1) / att.sum(1)
        return {"frame_logits": frame_logits, "frame_probs": frame_probs,
                "clip_probs": clip_probs}
