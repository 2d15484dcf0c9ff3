"""Log-mel features: how a waveform becomes the image the encoder sees (chapter 00).

Two front ends, chosen by ``preset.frontend``:

``"lite"``   torchaudio's mel filterbank (Slaney scale and norm, as librosa's
             defaults), Hann window, centred STFT, power spectrum.
``"passt"``  PaSST's own front end (what MAT-SED's encoder was trained on):
             pre-emphasis x[n] - 0.97 x[n-1]; STFT with n_fft 1024, a symmetric
             Hann window of 800, hop 320, centred; power spectrum; Kaldi mel
             banks (mel = 1127 ln(1 + f / 700)) from f_min to f_max with a zero
             column for the Nyquist bin.

Both then take log(mel + 1e-5) and scale it as PaSST does, (x + 4.5) / 5, so
features sit roughly in [-1, 1] whatever the front end. The output has
``n_samples // hop`` frames: the centred STFT's extra last frame is cut, so a
10 s clip at hop 10 ms gives exactly 1000 frames.
"""
from __future__ import annotations

import torch
import torchaudio

from ..presets import Preset, get_preset

LOG_OFFSET = 1e-5
# PaSST's normalisation of the log-mel: (log(mel + 1e-5) + 4.5) / 5.
PASST_SHIFT = 4.5
PASST_SCALE = 5.0
PREEMPHASIS = 0.97


class LogMel(torch.nn.Module):
    """Waveforms (B, N) or (N,) -> log-mel features (B, n_mels, N // hop).

    A torch module with its window and filterbank as buffers, so
    ``LogMel(preset).to("cuda")`` computes a whole batch on the GPU."""

    def __init__(self, preset: "Preset | str"):
        super().__init__()
        p = get_preset(preset)
        self.preset = p
        self.frontend = p.frontend
        self.n_fft, self.hop_length, self.win_length = p.n_fft, p.hop_length, p.win_length
        if p.frontend == "lite":
            window = torch.hann_window(p.win_length, periodic=True)
            fb = torchaudio.functional.melscale_fbanks(
                n_freqs=p.n_fft // 2 + 1, f_min=p.f_min, f_max=p.f_max, n_mels=p.n_mels,
                sample_rate=p.sample_rate, norm="slaney", mel_scale="slaney",
            ).T  # (n_mels, n_freqs)
        elif p.frontend == "passt":
            window = torch.hann_window(p.win_length, periodic=False)
            fb = kaldi_mel_banks(p.n_mels, p.n_fft, p.sample_rate, p.f_min, p.f_max)
        else:
            raise ValueError(f"preset {p.name!r}: unknown frontend {p.frontend!r} "
                             "(expected 'lite' or 'passt')")
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel_basis", fb.float(), persistent=False)

    @property
    def n_mels(self) -> int:
        return self.mel_basis.shape[0]

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        squeeze = waveform.dim() == 1
        x = waveform.unsqueeze(0) if squeeze else waveform
        if x.dim() != 2:
            raise ValueError(f"waveform must be (N,) or (B, N), got shape {tuple(waveform.shape)}")
        n_frames = x.shape[-1] // self.hop_length
        if n_frames < 1:
            raise ValueError(f"waveform of {x.shape[-1]} samples is shorter than one hop "
                             f"({self.hop_length} samples)")
        x = x.float()
        if self.frontend == "passt":
            x = x[:, 1:] - PREEMPHASIS * x[:, :-1]
        # Features are computed in float32 even under autocast: the log of a
        # half-precision power spectrum loses the quiet bins.
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = torch.stft(x, self.n_fft, hop_length=self.hop_length,
                              win_length=self.win_length, window=self.window,
                              center=True, pad_mode="reflect", return_complex=True)
            power = spec.real.square() + spec.imag.square()
            mel = torch.matmul(self.mel_basis, power)
            feats = (torch.log(mel + LOG_OFFSET) + PASST_SHIFT) / PASST_SCALE
        feats = feats[..., :n_frames]
        return feats[0] if squeeze else feats


def kaldi_mel_banks(n_mels: int, n_fft: int, sample_rate: int, f_min: float,
                    f_max: float) -> torch.Tensor:
    """Kaldi's triangular mel filters as PaSST uses them: (n_mels, n_fft // 2 + 1).

    Kaldi builds them over the n_fft // 2 bins below Nyquist; PaSST pads a zero
    column for the Nyquist bin so they apply to a full one-sided spectrum."""
    banks, _ = torchaudio.compliance.kaldi.get_mel_banks(
        n_mels, n_fft, float(sample_rate), float(f_min), float(f_max),
        vtln_low=100.0, vtln_high=-500.0, vtln_warp_factor=1.0)
    return torch.nn.functional.pad(banks, (0, 1))


def frame_times(n_frames: int, preset: "Preset | str") -> torch.Tensor:
    """Start time in seconds of each frame (frame i covers [i * hop, (i + 1) * hop))."""
    p = get_preset(preset)
    return torch.arange(n_frames, dtype=torch.float64) * p.frame_hop_seconds
