"""Reading clips: any file soundfile reads, at any rate, as one fixed-length mono signal (chapter 00).

The models see every clip as ``preset.clip_samples`` samples of mono audio at
``preset.sample_rate``. Real data is messier: DESED ships 44.1 kHz originals
and 16 kHz copies, some clips are stereo, and some weak or validation clips are
shorter than 10 s. ``load_audio`` hides all of that but returns ``n_valid``,
the number of real samples, because the zeros it pads with are not silence
the model should learn to call "no event": ``valid_frame_mask`` turns
``n_valid`` into a per-frame mask so that padding is never trained on or scored.

Audio is read with soundfile only (torchaudio >= 2.9 needs TorchCodec to
load files); torchaudio is used for resampling alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
# Subtypes that store floats, so can hold NaN or infinite samples (integer PCM cannot).
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
# Source samples decoded at a time when scanning or streaming a file.
SCAN_BLOCK = 1 << 18


class AudioError(ValueError):
    """An audio file that cannot be used. The message names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "audio file not found")
    if not path.is_file():
        raise AudioError(path, "is not a file (a folder?)")


def audio_info(path) -> tuple[int, int, int]:
    """(sample_rate, n_samples, channels) from the file header, without decoding.

    Cheap enough to run on every clip of a data set, which is what the data
    check does. A file with zero samples is reported as such, not as an error:
    it is information here, and ``load_audio`` is the one that refuses it.
    """
    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        raise AudioError(path, f"unreadable or corrupt audio file ({_short(exc)})") from None
    return int(info.samplerate), int(info.frames), int(info.channels)


def load_audio(path, sample_rate: int, n_samples: int | None = None
               ) -> tuple[np.ndarray, int]:
    """Read a clip as mono float32 at ``sample_rate``, optionally padded/cut to ``n_samples``.

    Returns ``(waveform, n_valid)``: ``n_valid`` is how many samples of
    ``waveform`` are real audio (the rest are padding zeros). Channels are
    averaged (a plain mean keeps the level of a mono signal copied to both
    channels). Other rates are resampled with torchaudio's windowed-sinc
    resampler, so duration and pitch are kept.

    Raises ``AudioError`` naming the file if it is missing, unreadable or empty.
    """
    path = Path(path)
    _check_exists(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(path, f"unreadable or corrupt audio file ({_short(exc)})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "audio file has zero samples")
    _check_finite(path, data)
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate:
        wav = _resample(wav, int(sr), int(sample_rate))
    wav = np.ascontiguousarray(wav, dtype=np.float32)
    n_valid = len(wav)
    if n_samples is not None:
        if n_samples <= 0:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        if len(wav) >= n_samples:
            wav = wav[:n_samples].copy()
            n_valid = n_samples
        else:
            wav = np.concatenate([wav, np.zeros(n_samples - len(wav), dtype=np.float32)])
    return wav, n_valid


def _check_finite(path, data: np.ndarray, offset: int = 0) -> None:
    bad = ~np.isfinite(data)
    if bad.any():
        first = offset + int(np.argmax(bad.any(axis=1) if bad.ndim == 2 else bad))
        raise AudioError(path, f"holds NaN or infinite samples (the first at sample {first}); "
                               f"repair or remove the file")


def nonfinite_samples(path) -> int:
    """How many NaN or infinite samples the file holds (0 without decoding for integer PCM,
    which cannot hold any; float files are decoded block by block)."""
    path = Path(path)
    _check_exists(path)
    try:
        if sf.info(str(path)).subtype not in FLOAT_SUBTYPES:
            return 0
        return sum(int((~np.isfinite(b)).sum())
                   for b in sf.blocks(str(path), blocksize=SCAN_BLOCK, dtype="float32"))
    except Exception as exc:
        raise AudioError(path, f"unreadable or corrupt audio file ({_short(exc)})") from None


def stream_audio(path, sample_rate: int, piece_samples: int) -> Iterator[np.ndarray]:
    """A file as consecutive mono float32 pieces of ``piece_samples`` at ``sample_rate``
    (the last one shorter), decoding about one piece of the source at a time: memory
    stays bounded for files of any length. Mixing and the checks are ``load_audio``'s;
    resampling runs per decoded block (at the model's own rate the pieces are exactly
    the whole-file ones)."""
    path = Path(path)
    _check_exists(path)
    if piece_samples <= 0:
        raise ValueError(f"piece_samples must be positive, got {piece_samples}")
    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:
        raise AudioError(path, f"unreadable or corrupt audio file ({_short(exc)})") from None
    with f:
        sr = int(f.samplerate)
        block = max(1, -(-piece_samples * sr // sample_rate))
        buf = np.zeros(0, dtype=np.float32)
        done = 0
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(path, f"unreadable or corrupt audio file ({_short(exc)})") from None
            if len(data):
                _check_finite(path, data, done)
                done += len(data)
                wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
                if sr != sample_rate:
                    wav = _resample(wav, sr, int(sample_rate))
                buf = np.concatenate([buf, wav.astype(np.float32)])
            while len(buf) >= piece_samples or (len(data) == 0 and len(buf)):
                yield np.ascontiguousarray(buf[:piece_samples])
                buf = buf[piece_samples:]
            if len(data) == 0:
                break
        if done == 0:
            raise AudioError(path, "audio file has zero samples")


def _resample(wav: np.ndarray, orig: int, new: int) -> np.ndarray:
    # Imported here: torchaudio is slow to import and only needed for odd rates.
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wav)), orig, new)
    return out.numpy()


def valid_frame_mask(n_valid: int, n_frames: int, hop_length: int) -> np.ndarray:
    """Bool mask (n_frames,): True where a frame holds real audio.

    Rule: frame ``i`` covers samples ``[i * hop_length, (i + 1) * hop_length)``
    (the same convention as ``labels.events_to_frames``) and is valid if its
    first sample is real audio, i.e. ``i * hop_length < n_valid``. A frame
    that is only partly real therefore still counts: it holds sound, and its
    label (an event touching it) is defined. A 3.7 s clip at hop 20 ms has
    exactly 185 valid frames.
    """
    if hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length}")
    starts = np.arange(n_frames, dtype=np.int64) * hop_length
    return starts < int(n_valid)


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
