"""PaSST-lite: a small Patchout faSt Spectrogram Transformer (chapter 01).

MAT-SED's encoder is PaSST-S (Koutini et al. 2022), a ViT on the log-mel
spectrogram pre-trained on AudioSet. This module rebuilds the same design at a
size a laptop can train, so the course can pre-train its own encoder on the
DESED-lite tagging corpus (the stand-in for AudioSet):

* the log-mel (B, n_mels, T) is cut into 16x16 patches with stride 10 by one
  Conv2d, giving a grid of F frequency x T' time patches;
* SEPARATE learned frequency and time positional embeddings are added (so a
  shorter input, e.g. a 5.12 s chunk of the global-local fusion, just uses the
  first T' time embeddings);
* two class tokens (cls and dist, as PaSST's DeiT heritage) are prepended;
* *structured patchout* while training drops whole time columns and frequency
  rows of the grid: a regulariser and a big speed-up (fewer tokens);
* pre-norm Transformer blocks, a final LayerNorm, and a tagging head on the
  mean of the two class tokens.

For SED, MAT-SED reads the token grid of an inner block (10 of 12; here 5 of
6), normalises it, averages over frequency and interpolates the time axis to
``frames_per_token`` frames per token (MAT-SED: 10, the mel frame rate; the
smoke and cpu presets: 5, half of it): ``frame_features`` and the module-level
``tokens_to_frames`` do exactly that, and ``matsed_lite.models.passt_real`` reuses
``tokens_to_frames`` for the real PaSST.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Block
from ..presets import Preset, get_preset

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED_WEIGHTS = WEIGHTS_DIR / "passt_lite.pt"
SHIPPED_RECIPE = WEIGHTS_DIR / "passt_lite.json"


def tokens_to_frames(tokens: torch.Tensor, n_frames: int, frames_per_token: int = 10) -> torch.Tensor:
    """Token grid (B, F, T', D) -> frame features (B, n_frames, D), as MAT-SED does.

    1. mean over the F frequency patches -> (B, T', D);
    2. repeat the last time step (T' -> T' + 1): with stride 10 and 16-wide
       patches, T' tokens cover about T' * 10 mel frames, one token short of the clip;
    3. linear interpolation by ``frames_per_token`` along time (``F.interpolate``,
       mode="linear", align_corners=False) -> (T' + 1) * frames_per_token frames;
    4. cut to ``n_frames``, or pad by repeating the last frame.

    For PaSST-S on 10 s: 99 -> 100 -> 1000 frames of 10 ms (x10, the mel frame
    rate). For PaSST-lite: 49 -> 50 -> 500 frames of 20 ms (x10), or 250 frames
    of 40 ms (x5, the smoke and cpu presets).
    """
    if tokens.dim() != 4:
        raise ValueError(f"tokens must be (B, F, T', D), got shape {tuple(tokens.shape)}")
    x = tokens.mean(dim=1)                              # (B, T', D)
    x = torch.cat([x, x[:, -1:]], dim=1)                # (B, T'+1, D)
    x = F.interpolate(x.transpose(1, 2), scale_factor=frames_per_token, mode="linear",
                      align_corners=False).transpose(1, 2)  # (B, (T'+1)*frames_per_token, D)
    if x.shape[1] >= n_frames:
        return x[:, :n_frames]
    pad = x[:, -1:].expand(-1, n_frames - x.shape[1], -1)
    return torch.cat([x, pad], dim=1)


def patchout_keep(n_freq: int, n_time: int, drop_freq: int, drop_time: int,
                  generator: torch.Generator | None = None, device=None):
    """Structured patchout (chapter 01): which frequency rows and time columns of the patch
    grid survive. Returns sorted index tensors (keep_freq, keep_time).

    Whole stripes are dropped (as PaSST does), never single patches, so the
    survivors still form a grid. At least one row and one column always
    survive, so short chunks still work."""
    keep_f = max(1, n_freq - drop_freq)
    keep_t = max(1, n_time - drop_time)
    # Time first, and no draw for a kept axis: the order the shipped encoder was trained with.
    cols = (torch.randperm(n_time, generator=generator)[:keep_t].sort().values
            if keep_t < n_time else torch.arange(n_time))
    rows = (torch.randperm(n_freq, generator=generator)[:keep_f].sort().values
            if keep_f < n_freq else torch.arange(n_freq))
    return rows.to(device), cols.to(device)


class PaSSTLite(nn.Module):
    """A small PaSST (see the module docstring). Input: log-mel (B, n_mels, T)."""

    def __init__(self, n_mels: int, max_frames: int, dim: int, depth: int, heads: int,
                 n_classes: int, patch: int = 16, stride: int = 10, patchout_time: int = 0,
                 patchout_freq: int = 0, mlp_ratio: float = 4.0):
        super().__init__()
        if n_mels < patch or max_frames < patch:
            raise ValueError(f"n_mels ({n_mels}) and max_frames ({max_frames}) must be at "
                             f"least the patch size ({patch})")
        self.config = dict(n_mels=n_mels, max_frames=max_frames, dim=dim, depth=depth,
                           heads=heads, n_classes=n_classes, patch=patch, stride=stride,
                           patchout_time=patchout_time, patchout_freq=patchout_freq,
                           mlp_ratio=mlp_ratio)
        self.n_mels, self.max_frames, self.dim, self.depth = n_mels, max_frames, dim, depth
        self.patch, self.stride = patch, stride
        self.patchout_time, self.patchout_freq = patchout_time, patchout_freq
        self.feature_block = depth  # from_preset sets the preset's block
        # Context frames per time token: stride (the mel frame rate) unless a preset says less.
        self.frames_per_token = stride
        self.n_freq = (n_mels - patch) // stride + 1
        self.n_time_max = (max_frames - patch) // stride + 1

        self.patch_embed = nn.Conv2d(1, dim, kernel_size=patch, stride=stride)
        # Separate positional embeddings: one per frequency row, one per time column.
        self.freq_pos = nn.Parameter(torch.zeros(1, dim, self.n_freq, 1))
        self.time_pos = nn.Parameter(torch.zeros(1, dim, 1, self.n_time_max))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_pos = nn.Parameter(torch.zeros(1, 2, dim))  # the class tokens' own embeddings
        self.blocks = nn.ModuleList(Block(dim, heads, pos="none", mlp_ratio=mlp_ratio, dropout=0.0)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.frame_norm = nn.LayerNorm(dim)  # MAT-SED's trainable norm on the block features
        self.head = nn.Linear(dim, n_classes)
        self._init_weights()

    @classmethod
    def from_preset(cls, preset: "Preset | str", n_classes: int) -> "PaSSTLite":
        p = get_preset(preset)
        model = cls(n_mels=p.n_mels, max_frames=p.n_frames, dim=p.encoder_dim,
                    depth=p.encoder_depth, heads=p.encoder_heads, n_classes=n_classes,
                    patchout_time=p.patchout_time, patchout_freq=p.patchout_freq)
        model.feature_block = p.encoder_feature_block
        model.frames_per_token = p.frames_per_token
        return model

    def n_context_frames(self, n_mel_frames: int) -> int:
        """Frame features per clip of ``n_mel_frames`` log-mel frames."""
        return n_mel_frames * self.frames_per_token // self.stride

    def _init_weights(self):
        for p in (self.freq_pos, self.time_pos, self.cls_token, self.dist_token, self.cls_pos):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------
    def _grid(self, mel: torch.Tensor, patchout: bool) -> torch.Tensor:
        """Log-mel -> patch grid with positions (B, D, F, T'), stripes dropped if asked
        (the patch embedding built by hand in chapter 01)."""
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"mel must be (B, {self.n_mels}, T), got shape {tuple(mel.shape)}")
        t = mel.shape[-1]
        if t > self.max_frames:
            raise ValueError(f"input has {t} frames, more than max_frames={self.max_frames}")
        if t < self.patch:  # too short for one patch: pad with the quietest value seen
            mel = F.pad(mel, (0, self.patch - t), value=float(mel.min()))
        x = self.patch_embed(mel.unsqueeze(1))          # (B, D, F, T')
        x = x + self.freq_pos + self.time_pos[..., :x.shape[-1]]
        if patchout:
            x = self._patchout(x)
        return x

    def _patchout(self, x: torch.Tensor) -> torch.Tensor:
        """Structured patchout of the grid (B, D, F, T'): the same stripes for the whole batch."""
        keep_f, keep_t = patchout_keep(x.shape[2], x.shape[3], self.patchout_freq,
                                       self.patchout_time, device=x.device)
        return x[:, :, keep_f][..., keep_t]

    def _run(self, mel: torch.Tensor, n_blocks: int, patchout: bool):
        """Returns (sequence after ``n_blocks`` blocks incl. class tokens, (F, T'))."""
        grid = self._grid(mel, patchout)
        x = self._sequence(grid)
        for blk in self.blocks[:n_blocks]:
            x, _ = blk(x)
        return x, tuple(grid.shape[2:])

    def _sequence(self, grid: torch.Tensor) -> torch.Tensor:
        """Patch grid (B, D, F, T') -> (B, 2 + F*T', D): the two class tokens, then the
        patches frequency-major."""
        x = grid.flatten(2).transpose(1, 2)
        cls = torch.cat([self.cls_token, self.dist_token], dim=1) + self.cls_pos
        return torch.cat([cls.expand(grid.shape[0], -1, -1), x], dim=1)

    def _all_blocks(self, grid: torch.Tensor, block: int):
        """Every block on the grid's sequence, in one pass: (final sequence, token grid
        (B, F, T', D) read after ``block`` on the way up)."""
        b, _, nf, nt = grid.shape
        x, tokens = self._sequence(grid), None
        for i, blk in enumerate(self.blocks, start=1):
            x, _ = blk(x)
            if i == block:
                tokens = x[:, 2:].reshape(b, nf, nt, -1)
        return x, tokens

    def _check_block(self, block: int) -> int:
        if not 1 <= block <= self.depth:
            raise ValueError(f"block must be in 1..{self.depth}, got {block}")
        return block

    def tokens(self, mel: torch.Tensor, block: int | None = None,
               patchout: bool = False) -> torch.Tensor:
        """Token grid (B, F, T', D) after ``block`` blocks (1-based; default: all),
        class tokens dropped. Raw block output: no norm applied.

        Patchout is off unless asked for (and then only in training mode): frame
        features need every time column to line up with the mel frames."""
        block = self._check_block(block or self.depth)
        x, (nf, nt) = self._run(mel, block, patchout and self.training)
        return x[:, 2:].reshape(x.shape[0], nf, nt, -1)

    def frame_features(self, mel: torch.Tensor, block: int | None = None) -> torch.Tensor:
        """Frame-level features (B, n_context_frames(T_mel), D), MAT-SED's way:
        tokens of ``block`` (default: the preset's feature block), ``frame_norm``,
        then ``tokens_to_frames`` at ``frames_per_token`` frames per token."""
        tok = self.tokens(mel, block or self.feature_block)
        return tokens_to_frames(self.frame_norm(tok), self.n_context_frames(mel.shape[-1]),
                                self.frames_per_token)

    def frames_and_clip(self, mel: torch.Tensor):
        """(frame_features(mel), clip_embedding(mel)) from ONE pass through the
        blocks: the frames are read at the feature block on the way up. No
        patchout (frame features need every time column), also in training."""
        x, tok = self._all_blocks(self._grid(mel, patchout=False), self.feature_block)
        frames = tokens_to_frames(self.frame_norm(tok), self.n_context_frames(mel.shape[-1]),
                                  self.frames_per_token)
        return frames, self.norm(x)[:, 2:].mean(dim=1)

    def tag_and_tokens(self, mel: torch.Tensor, block: int | None = None):
        """Tagging logits and the token grid after ``block`` blocks from ONE pass,
        with structured patchout in training mode (the strong pre-training of
        chapter 01: a frame loss on the tokens beside the tagging loss).

        Returns (logits (B, n_classes), tokens (B, F', T', D), kept time columns
        (T',)): the columns say which time patches survived patchout, so labels
        can be read at the same positions."""
        block = self._check_block(block or self.feature_block)
        grid = self._grid(mel, patchout=False)
        nt_all = grid.shape[-1]
        keep_t = torch.arange(nt_all, device=grid.device)
        if self.training and (self.patchout_time or self.patchout_freq):
            keep_f, keep_t = patchout_keep(grid.shape[2], nt_all, self.patchout_freq,
                                           self.patchout_time, device=grid.device)
            grid = grid[:, :, keep_f][..., keep_t]
        x, tokens = self._all_blocks(grid, block)
        x = self.norm(x)
        return self.head((x[:, 0] + x[:, 1]) / 2), tokens, keep_t

    def _final(self, mel: torch.Tensor) -> torch.Tensor:
        x, _ = self._run(mel, self.depth, self.training)
        return self.norm(x)

    def clip_embedding(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, D): mean of the final (normed) patch tokens, MAT-SED's AT-head input."""
        return self._final(mel)[:, 2:].mean(dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Tagging logits (B, n_classes) from the mean of the two class tokens."""
        x = self._final(mel)
        return self.head((x[:, 0] + x[:, 1]) / 2)


# ----------------------------------------------------------------------
# shipped weights

def shipped_encoder_recipe() -> dict:
    """The recipe JSON recorded next to the shipped weights (how they were made)."""
    if not SHIPPED_RECIPE.is_file():
        raise FileNotFoundError(f"no shipped encoder recipe at {SHIPPED_RECIPE}")
    return json.loads(SHIPPED_RECIPE.read_text())


def load_pretrained_encoder(preset: "Preset | str" = "cpu",
                            map_location: "str | torch.device" = "cpu",
                            weights_dir=None) -> PaSSTLite:
    """The shipped PaSST-lite (pre-trained as a tagger), in eval mode.

    ``weights_dir``: load ``encoder.pt`` and ``recipe.json`` from this folder (what
    ``pretrain_encoder`` writes) instead of the shipped pair. The model is built
    from the recipe's ``model_config``, so its tagging head has as many outputs
    as the encoder was trained with: 10 (DESED-lite) or 54 (the broad corpus).
    The weights only fit presets with the same ``encoder_geometry`` (front end,
    mel settings, encoder size): smoke, cpu and gpu. Anything else raises a
    ValueError saying what to do instead."""
    p = get_preset(preset)
    if weights_dir is None:
        recipe, weights = shipped_encoder_recipe(), SHIPPED_WEIGHTS
    else:
        recipe = json.loads((Path(weights_dir) / "recipe.json").read_text())
        weights = Path(weights_dir) / "encoder.pt"
    recorded = [list(recipe["encoder_geometry"])]
    if json.loads(json.dumps(list(p.encoder_geometry))) not in recorded:
        raise ValueError(
            f"the shipped PaSST-lite was trained for encoder geometry "
            f"{tuple(recipe['encoder_geometry'])} (preset {recipe['preset']!r}); preset "
            f"{p.name!r} has {p.encoder_geometry}. Use the real PaSST "
            f"(matsed_lite.models.passt_real) for this preset, or train a PaSST-lite for it with "
            f"`matsed-lite pretrain-encoder --data ROOT --preset {p.name} --out DIR`.")
    cfg = dict(recipe["model_config"])
    model = PaSSTLite(**cfg)
    model.feature_block = p.encoder_feature_block
    model.frames_per_token = p.frames_per_token
    state = torch.load(weights, map_location=map_location, weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.eval()
