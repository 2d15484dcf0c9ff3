"""The DCASE 2023 Task 4 baseline CRNN, the yardstick MAT-SED is compared with (chapter 05).

log-mel (B, n_mels, T)
  -> per-instance min-max normalisation to [0, 1]
  -> conv blocks: Conv 3x3 -> BatchNorm (eps 1e-3) -> GLU (or ReLU) -> Dropout -> AvgPool (time, freq),
     frequency pooled until one bin is left; the geometry (``CRNN_GEOMETRIES``) sets the rest:
       dcase  (the baseline, ``paper``): 7 blocks, filters 16, 32, 64, 128, 128, 128, 128,
              time pooled x2 twice (x4), dropout 0.5
       small  (the lite presets): 4 blocks, filters 16, 32, 64, 128, time pooled x2 once, dropout 0.1
  -> (B, T', 128) -> 2-layer bidirectional GRU, 128 per direction -> Dropout
  -> strong: sigmoid(Linear(256 -> K)) per frame
  -> weak:   attention pooling over time of the strong output

It is what "a conventional SED model, trained from scratch" looks like: about
a million parameters (0.6 M small), against MAT-SED's pre-trained transformer encoder.

Two details follow the baseline's code rather than its description:
* GLU: out = Linear_c(x) * sigmoid(x), a 1x1 linear map over channels gated
  by the input itself (not the split-channel GLU of language models).
* Attention pooling: the attention logits dense(x) (B, T, K) go through a
  softmax over the *classes* (dim -1), are clamped to >= 1e-7, and the clip
  score is sum_t(strong * a) / sum_t(a). Dividing by sum_t(a) makes it a
  weighted average over time whatever the softmax axis; ``attention_softmax=
  "time"`` gives the textbook softmax over time instead.

``activation="relu"`` puts a ReLU where the GLU is (``Preset.crnn_activation``;
the lite presets use it). Measured on DESED-lite cpu, plain
supervised (strong-frame BCE, 12 clips a step, one seed; validation frame mAP;
``benchmarks/crnn_blocks.py``): after 150 steps GLU 0.29, ReLU 0.37, with the
short classes (alarm, cat, dog, speech) near chance (0.06-0.12) with GLU and
0.18-0.29 with ReLU; after 450 steps ReLU 0.72 (every class 0.46-0.95). Max pooling, 40 ms output
frames and dropping the min-max scaling did not help. The baseline trains 200
epochs; at a budget of a few hundred steps its GLU blocks barely start on
short events.

``geometry="small"`` (``CRNN_GEOMETRIES``, ``Preset.crnn_geometry``) is a lighter
CRNN for such budgets: 4 ReLU blocks (16, 32, 64, 128 filters), time pooled x2 once
(40 ms frames at the lite hop), dropout 0.1, the same GRU and heads. Trained plainly
(``crnn_supervised``) on DESED-lite cpu it reached validation PSDS1 0.17, 0.28, 0.52,
0.59 after epochs 1-4 (16 CPU-minutes, one seed) where the DCASE geometry had 0.02,
0.09, 0.21 after 3 (``benchmarks/crnn_recipes.py``).

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
    """DCASE pools with the frequency pooling adapted to ``n_mels`` and the block count.

    The frequency axis is halved (floor) k = floor(log2(n_mels)) times in all, which
    leaves one bin; the halvings are spread over the blocks, earlier blocks taking
    the extra ones. 128 mels in 7 blocks (the baseline): x2 in every block; 64 mels
    in 7 blocks: x2 in the first 6, the last keeps its single bin; 64 mels in 4
    blocks: x4, x4, x2, x2. The time pools are the caller's (the baseline's x2, x2,
    then 1: 4x fewer frames)."""
    if len(time_pools) != n_blocks:
        raise ValueError(f"{len(time_pools)} time pools for {n_blocks} blocks")
    if int(n_mels) < 1 or n_blocks < 1:
        raise ValueError(f"need n_mels >= 1 and at least one block, got {n_mels} and {n_blocks}")
    k = int(n_mels).bit_length() - 1              # floor(log2(n_mels))
    halvings = [k // n_blocks + (1 if i < k % n_blocks else 0) for i in range(n_blocks)]
    if max(halvings) > 3:
        raise ValueError(f"{n_blocks} blocks cannot reduce {n_mels} mel bins to 1 with pools of "
                         f"at most x8 per block; use more blocks or fewer mels")
    return tuple((int(t), 2 ** h) for t, h in zip(time_pools, halvings))


# Named geometries (``Preset.crnn_geometry``, ``train-crnn --geometry``): the conv
# filters, the time pooling and the dropout. The frequency pooling follows n_mels.
CRNN_GEOMETRIES = {
    # the DCASE 2023 baseline: 7 blocks, 4x fewer frames (80 ms at the lite hop), dropout 0.5
    "dcase": {"filters": DCASE_FILTERS, "time_pools": (2, 2, 1, 1, 1, 1, 1), "dropout": 0.5},
    # 4 blocks, 2x fewer frames (40 ms at the lite hop), dropout 0.1: what a few hundred
    # steps can train (benchmarks/crnn_recipes.py --geometry small)
    "small": {"filters": (16, 32, 64, 128), "time_pools": (2, 1, 1, 1), "dropout": 0.1},
}


def crnn_geometry(name: str) -> dict:
    """The geometry ``name`` of ``CRNN_GEOMETRIES``; an unknown name is refused, naming the choices."""
    if name not in CRNN_GEOMETRIES:
        raise ValueError(f"unknown CRNN geometry {name!r}; choose from {', '.join(CRNN_GEOMETRIES)}")
    return CRNN_GEOMETRIES[name]


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
        self.filters = tuple(int(c) for c in filters)
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
    def from_preset(cls, preset, n_classes: int, geometry: str | None = None, **kwargs) -> "CRNN":
        """The CRNN for a preset's log-mels: the preset's ``crnn_geometry`` (or
        ``geometry``, a key of ``CRNN_GEOMETRIES``) with its frequency pooling adapted
        to n_mels; the activation is the preset's ``crnn_activation`` unless given."""
        p = get_preset(preset)
        g = crnn_geometry(p.crnn_geometry if geometry is None else geometry)
        kwargs.setdefault("activation", p.crnn_activation)
        kwargs.setdefault("filters", g["filters"])
        kwargs.setdefault("dropout", g["dropout"])
        kwargs.setdefault("pools", frequency_pools(p.n_mels, len(g["filters"]), g["time_pools"]))
        return cls(p.n_mels, n_classes, **kwargs)

    def config(self) -> dict:
        """The keyword arguments that rebuild this architecture (with n_mels, n_classes);
        recorded in model.pt so a model loads whatever the preset says today."""
        return {"filters": list(self.filters), "pools": [list(p) for p in self.pools],
                "rnn_hidden": self.rnn.hidden_size, "rnn_layers": self.rnn.num_layers,
                "dropout": self.dropout.p, "rnn_dropout": self.rnn.dropout,
                "attention_softmax": self.attention_softmax,
                "activation": self.activation}

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
