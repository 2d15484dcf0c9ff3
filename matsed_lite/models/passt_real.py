"""MAT-SED's frame features from the real PaSST-S (optional extra).

Install with ``pip install "matsed-lite[passt]"`` (it brings ``hear21passt``
and ``timm``). The AudioSet weights (about 345 MB: 86 M float32 parameters)
are fetched on first use, so this is meant for a machine with internet access,
e.g. Colab, or one where the checkpoint file has been put by hand. Everything
else in matsed-lite works without it: the course's own encoder is ``passt_lite``.

What MAT-SED does with PaSST-S, and what this module rebuilds:
waveform at 32 kHz -> PaSST's own log-mel front end (128 Kaldi mels, hop 10 ms,
1000 frames for 10 s) -> patch grid 12 frequency x 99 time -> 12 blocks. The
frame features are the output of block 10, class tokens dropped, a trainable
LayerNorm(768), the mean over the 12 frequency patches, the last step repeated
and linear interpolation x10 back to the mel frame rate (``tokens_to_frames``
from ``passt_lite``, shared with the course's PaSST-lite). The clip embedding
(input of the AT head) is the mean of the final block's patch tokens after the
final norm.

Unlike ``PaSSTLite`` (which takes log-mels), ``RealPaSSTFrames`` takes
waveforms, because the real model comes with its own front end and its weights
only make sense on exactly that front end; ``forward_mel`` is the log-mel entry
point for code that slices the mel itself (the global-local fusion's windows).

Findings about ``hear21passt`` 0.0.26 (its only release on PyPI):

* Requires ``timm>=0.4.12`` and ``torchaudio``. timm is imported only for
  ``download_cached_file`` (``timm.models._hub`` in timm >= 0.9, else
  ``timm.models.hub``); the network itself is hear21passt's own copy of the ViT
  code. timm 1.0.31 (which pulls torchvision, huggingface_hub, safetensors)
  works with torch 2.14.1, torchaudio 2.11 and numpy 2.4.
* ``hear21passt.models.passt.get_model(arch="passt_s_swa_p16_128_ap476",
  pretrained=False, fstride=10, tstride=10, input_fdim=128, input_tdim=998)``
  builds PaSST-S offline with random weights. ``pretrained=True`` downloads
  ``passt-s-f128-p16-s10-ap.476-swa.pt`` through timm into
  ``torch.hub.get_dir()/checkpoints``; we do the same fetch ourselves so a
  failure gives a clear error and a local file can be used instead.
* The net is a ``PaSST`` with ``blocks`` an ``nn.Sequential`` of 12 ``Block``s
  (block 10 is ``net.blocks[9]``), ``norm`` the final LayerNorm (eps 1e-6),
  two class tokens (cls, dist) in front. ``forward`` returns
  ``(logits, mean of the two class tokens)``; the patch tokens are reached only
  with hooks.
* Patch tokens: ``patch_embed`` gives (B, 768, F, T'), separate frequency and
  time positional embeddings are added, then ``flatten(2).transpose(1, 2)``:
  the sequence is frequency-major, token ``2 + f * T' + t`` is frequency patch
  f, time patch t, so ``tokens[:, 2:].reshape(B, F, T', 768)``.
* The time embedding has 99 steps (``input_tdim=998``): shorter inputs use the
  first T' steps, longer ones fail, so at most about 10 s fits. A 1000-frame
  input also triggers a harmless "Input image size (128*1000) doesn't match"
  warning, which we silence.
* Front end ``AugmentMelSTFT``: pre-emphasis by conv1d (one sample shorter),
  STFT n_fft 1024 / window 800 (symmetric Hann) / hop 320, centred, power,
  Kaldi mel banks fmin 0 to fmax 15 kHz (+ a zero Nyquist column), then
  (log(mel + 1e-5) + 4.5) / 5. N samples -> (N - 1) // 320 + 1 frames, 1000 for
  10 s. In training mode it randomises fmin in [0, 10) Hz and fmax in
  [14001, 16000] Hz, as MAT-SED does; its SpecAugment masks (``freqm``/``timem``)
  are NOT part of MAT-SED's front end and are switched off here. It still calls
  ``torch.stft(return_complex=False)`` and ``torch.cuda.amp.autocast``, which
  only warn on torch 2.14 (silenced here).
* ``hear21passt.models.passt.first_RUN`` makes the first forward print debug
  shapes; we set it to False.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from ..files import MissingPackageError, SetupError
from .passt_lite import tokens_to_frames

ARCH = "passt_s_swa_p16_128_ap476"
CHECKPOINT_NAME = "passt-s-f128-p16-s10-ap.476-swa.pt"
CHECKPOINT_URL = ("https://github.com/kkoutini/PaSST/releases/download/"
                  "v0.0.1-audioset/" + CHECKPOINT_NAME)
INSTALL_HINT = 'pip install "matsed-lite[passt]"'

SAMPLE_RATE = 32000
HOP = 320            # samples: 10 ms mel frames
N_MELS = 128
PATCH = 16
STRIDE = 10          # patch stride in mel bins and frames (fstride = tstride)
EMBED_DIM = 768
FEATURE_BLOCK = 10   # MAT-SED reads block 10 of 12

# Messages of harmless warnings raised inside hear21passt on every call.
_QUIET = ("Input image size", "stft with return_complex=False",
          r"`torch.cuda.amp.autocast")


def _import_hear21passt():
    """(hear21passt.models.passt module, AugmentMelSTFT class), or an ImportError
    telling the user which extra to install."""
    try:
        from hear21passt.models import passt as passt_module
        from hear21passt.models.preprocess import AugmentMelSTFT
    except ImportError as err:
        raise MissingPackageError(
            f"the real PaSST needs the optional packages hear21passt and timm: "
            f"{INSTALL_HINT} (import failed: {err})") from err
    passt_module.first_RUN = False  # its debug prints on the first forward
    return passt_module, AugmentMelSTFT


def default_checkpoint_path() -> Path:
    """Where torch hub (and hear21passt itself) caches the PaSST-S weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / CHECKPOINT_NAME


def _download(url: str, dst: Path) -> None:
    """Fetch ``url`` to ``dst`` (torch hub writes a temp file, then renames it,
    so a failed download leaves nothing half-written behind)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dst), progress=True)


def _missing_weights_error(detail: str) -> SetupError:
    return SetupError(
        f"cannot load the PaSST-S AudioSet weights: {detail}. To fix it, either run "
        f"where the internet is reachable (e.g. Colab) so they download by themselves "
        f"({CHECKPOINT_URL}), or download {CHECKPOINT_NAME} elsewhere and put it at "
        f"{default_checkpoint_path()} (torch hub's checkpoint dir), or pass its path: "
        f"--passt-checkpoint FILE on the command line, "
        f"load_real_passt(checkpoint_path=...) / RealPaSSTFrames(checkpoint_path=...). "
        f"For offline tests, pretrained=False builds the model with random weights.")


def _checkpoint_file(checkpoint_path: "str | Path | None", download: bool) -> Path:
    """The local checkpoint file to read, downloading it to the hub cache if needed."""
    if checkpoint_path is not None:
        path = Path(checkpoint_path).expanduser()
        if not path.is_file():
            raise _missing_weights_error(f"no checkpoint file at {path}")
        return path
    path = default_checkpoint_path()
    if path.is_file():
        return path
    if not download:
        raise _missing_weights_error(f"{path} does not exist and download=False")
    try:
        _download(CHECKPOINT_URL, path)
    except Exception as err:  # network errors come in many types
        raise _missing_weights_error(
            f"downloading {CHECKPOINT_URL} failed ({type(err).__name__}: {err})") from err
    return path


def _read_state(path: Path) -> dict:
    """The checkpoint's state dict, checked to look like PaSST before the (slow)
    network is built."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise _missing_weights_error(
            f"{path} could not be read as a torch checkpoint ({type(err).__name__}: "
            f"{err}); a partial or corrupt file? delete it and try again") from err
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # as hear21passt's filter does
    if not isinstance(state, dict) or "time_new_pos_embed" not in state:
        raise _missing_weights_error(
            f"{path} does not match PaSST-S ({ARCH}): no PaSST state dict in it; "
            f"is it {CHECKPOINT_NAME}?")
    return state


def load_real_passt(pretrained: bool = True, checkpoint_path: "str | Path | None" = None,
                    download: bool = True) -> nn.Module:
    """hear21passt's PaSST-S network (no front end), in eval mode.

    Weights: ``checkpoint_path`` if given; else the torch hub cache, downloaded
    there first if missing and ``download``. ``pretrained=False`` (and no path)
    gives random weights, with no file or network access. Raises ImportError
    without hear21passt and RuntimeError when the weights cannot be had."""
    passt_module, _ = _import_hear21passt()
    state = None
    if pretrained or checkpoint_path is not None:
        path = _checkpoint_file(checkpoint_path, download)
        state = _read_state(path)
    with contextlib.redirect_stdout(io.StringIO()):  # get_model prints the whole net
        net = passt_module.get_model(arch=ARCH, pretrained=False, n_classes=527,
                                     in_channels=1, fstride=STRIDE, tstride=STRIDE,
                                     input_fdim=N_MELS, input_tdim=998)
    if state is not None:
        try:
            result = net.load_state_dict(passt_module.checkpoint_filter_fn(state, net),
                                         strict=False)
            problem = "; ".join(
                f"{what} keys {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                for what, keys in (("missing", result.missing_keys),
                                   ("unexpected", result.unexpected_keys)) if keys)
        except (RuntimeError, KeyError, ValueError) as err:  # e.g. shape mismatches
            problem = " ".join(str(err).split())[:300] or type(err).__name__
        if problem:
            raise _missing_weights_error(
                f"{path} does not match PaSST-S ({ARCH}), is it {CHECKPOINT_NAME}? "
                f"({problem})")
    return net.eval()


def net_config(net: nn.Module) -> dict:
    """The keyword arguments of hear21passt's ``PaSST`` that rebuild ``net``'s
    architecture (PaSST-S, or a smaller one built for tests): stored in a
    fine-tuned ``model.pt`` so evaluation needs neither the network nor the
    original checkpoint (the weights are in the model's state dict)."""
    blk = net.blocks[0]
    return {"img_size": list(net.patch_embed.img_size),
            "patch_size": int(net.patch_embed.patch_size[0]),
            "stride": int(net.patch_embed.stride[0]), "in_chans": 1,
            "num_classes": int(net.num_classes), "embed_dim": int(net.embed_dim),
            "depth": len(net.blocks), "num_heads": int(blk.attn.num_heads),
            "mlp_ratio": blk.mlp.fc1.out_features / net.embed_dim,
            "distilled": getattr(net, "dist_token", None) is not None}


def build_passt_net(config: dict) -> nn.Module:
    """A hear21passt ``PaSST`` with random weights from ``net_config``'s dict
    (no file or network access)."""
    passt_module, _ = _import_hear21passt()
    cfg = dict(config)
    cfg["img_size"] = tuple(cfg["img_size"])
    with contextlib.redirect_stdout(io.StringIO()):
        return passt_module.PaSST(**cfg)


def build_passt_mel() -> nn.Module:
    """PaSST's front end with MAT-SED's settings: fmin 0, fmax 15 kHz at eval,
    both randomised in training mode, no SpecAugment masks."""
    _, AugmentMelSTFT = _import_hear21passt()
    return AugmentMelSTFT(n_mels=N_MELS, sr=SAMPLE_RATE, win_length=800, hopsize=HOP,
                          n_fft=1024, freqm=0, timem=0, htk=False, fmin=0.0, fmax=15000,
                          norm=1, fmin_aug_range=10, fmax_aug_range=2000)


class _StopForward(Exception):
    """Raised by the feature hook to skip the blocks after it when the clip
    embedding is not wanted (saves 2 of 12 blocks per call)."""


class RealPaSSTFrames(nn.Module):
    """Real PaSST-S -> MAT-SED frame features and clip embedding.

    ``forward(waveform (B, N) at 32 kHz)`` -> dict with ``frames`` (B, T, 768),
    ``clip_embedding`` (B, 768) and ``tokens`` (B, 12, T', 768), the raw block
    output (before ``frame_norm``). T is the mel frame count ((N - 1) // 320 + 1:
    1000 for 10 s), T' = (T - 16) // 10 + 1 (99 for 10 s). Clips must be at most
    about 10 s (PaSST-S has 99 time positions) and at least 16 mel frames.

    ``model``: a hear21passt PaSST net (or a ``PasstBasicWrapper``, whose
    ``.net`` is used) instead of loading one. ``mel``: another front end module
    (waveform -> (B, 128, T)). ``peak_normalize``: divide each waveform by its
    peak first, as MAT-SED's front end does. ``frame_norm`` is the trainable
    LayerNorm(768) MAT-SED puts on the block output."""

    def __init__(self, model: "nn.Module | None" = None, block: int = FEATURE_BLOCK,
                 pretrained: bool = True, checkpoint_path: "str | Path | None" = None,
                 mel: "nn.Module | None" = None, peak_normalize: bool = True):
        super().__init__()
        _import_hear21passt()
        if model is None:
            model = load_real_passt(pretrained=pretrained, checkpoint_path=checkpoint_path)
        elif hasattr(model, "net") and hasattr(model, "mel"):  # PasstBasicWrapper
            model = model.net
        if getattr(model, "s_patchout_t", 0) or getattr(model, "u_patchout", 0):
            raise ValueError("time or unstructured patchout breaks the time axis of the "
                             "frame features: build the net with s_patchout_t=u_patchout=0")
        depth = len(model.blocks)
        if not 1 <= block <= depth:
            raise ValueError(f"block must be in 1..{depth}, got {block}")
        self.net = model
        self.mel = mel if mel is not None else build_passt_mel()
        self.block = block
        self.peak_normalize = peak_normalize
        self.sample_rate = SAMPLE_RATE
        self.hop = HOP
        self.stride = int(model.patch_embed.stride[1])
        self.frames_per_token = self.stride  # MAT-SED: x10 interpolation, 10 ms frames
        self.patch = int(model.patch_embed.patch_size[1])
        self.max_time_patches = int(model.time_new_pos_embed.shape[-1])
        self.embed_dim = int(model.embed_dim)
        self.frame_norm = nn.LayerNorm(self.embed_dim)

    @property
    def dim(self) -> int:
        """Feature width (768 for PaSST-S), as ``PaSSTLite.dim``."""
        return self.embed_dim

    @property
    def feature_module(self) -> nn.Module:
        """The block whose output the frame features are read from."""
        return self.net.blocks[self.block - 1]

    # ------------------------------------------------------------------
    def logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform (B, N) or (N,) at 32 kHz -> PaSST log-mel (B, 128, T)."""
        x = waveform.unsqueeze(0) if waveform.dim() == 1 else waveform
        if x.dim() != 2:
            raise ValueError(f"waveform must be (N,) or (B, N), got shape {tuple(waveform.shape)}")
        x = x.float()
        if self.peak_normalize:
            x = x / (x.abs().amax(dim=1, keepdim=True) + 1e-10)
        with warnings.catch_warnings():
            for msg in _QUIET:
                warnings.filterwarnings("ignore", message=msg)
            return self.mel(x)

    def _check_mel(self, mel: torch.Tensor) -> int:
        if mel.dim() != 3 or mel.shape[1] != N_MELS:
            raise ValueError(f"mel must be (B, {N_MELS}, T), got shape {tuple(mel.shape)}")
        t = mel.shape[-1]
        n_time = (t - self.patch) // self.stride + 1
        if t < self.patch:
            raise ValueError(f"clip too short: {t} mel frames, PaSST needs at least "
                             f"{self.patch} (about {self.patch * HOP / SAMPLE_RATE:.2f} s)")
        if n_time > self.max_time_patches:
            max_t = self.patch + (self.max_time_patches - 1) * self.stride + self.stride - 1
            raise ValueError(f"clip too long: {t} mel frames give {n_time} time patches, "
                             f"PaSST-S has {self.max_time_patches} time positions "
                             f"(at most {max_t} frames, about 10 s): cut it or use windows")
        return n_time

    def forward_mel(self, mel: torch.Tensor, clip: bool = True) -> dict:
        """Log-mel (B, 128, T) from ``logmel`` -> dict(frames, tokens[, clip_embedding]).

        Runs the net once with temporary forward hooks on block ``self.block``
        and on the final norm (temporary, so deepcopies for a mean teacher and
        pickling see a plain module). With ``clip=False`` the blocks after
        ``self.block`` are skipped."""
        n_time = self._check_mel(mel)
        grabbed = {}

        def grab_block(_module, _inputs, output):
            grabbed["block"] = output
            if not clip:
                raise _StopForward

        def grab_final(_module, _inputs, output):
            grabbed["final"] = output

        handles = [self.feature_module.register_forward_hook(grab_block)]
        if clip:
            handles.append(self.net.norm.register_forward_hook(grab_final))
        try:
            with warnings.catch_warnings():
                for msg in _QUIET:
                    warnings.filterwarnings("ignore", message=msg)
                self.net(mel.unsqueeze(1))
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()

        seq = grabbed["block"][:, 2:]                     # drop cls + dist tokens
        b, n, d = seq.shape
        tokens = seq.reshape(b, n // n_time, n_time, d)   # frequency-major grid
        out = {"tokens": tokens,
               "frames": tokens_to_frames(self.frame_norm(tokens),
                                          mel.shape[-1] * self.frames_per_token // self.stride,
                                          self.frames_per_token)}
        if clip:
            out["clip_embedding"] = grabbed["final"][:, 2:].mean(dim=1)
        return out

    def frames_and_clip(self, mel: torch.Tensor):
        """(frames, clip embedding) of log-mels in one pass: the call ``MATSEDLite``
        and the frame caches make (the package's ``LogMel("paper")`` gives these
        mels from the data; it does not peak-normalise)."""
        out = self.forward_mel(mel, clip=True)
        return out["frames"], out["clip_embedding"]

    def forward(self, waveform: torch.Tensor) -> dict:
        """Waveform (B, N) at 32 kHz -> dict(frames, clip_embedding, tokens)."""
        return self.forward_mel(self.logmel(waveform), clip=True)

    def frame_features(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, T, 768) frame features only (skips the last blocks)."""
        return self.forward_mel(self.logmel(waveform), clip=False)["frames"]

    def clip_embedding(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, 768): mean of the final normed patch tokens (MAT-SED's AT-head input)."""
        return self.forward(waveform)["clip_embedding"]
