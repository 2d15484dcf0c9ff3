"""audio.py: reading, resampling, mixing, padding, frame masks and clear errors."""
import numpy as np
import pytest
import soundfile as sf

from matsed_lite.data.audio import AudioError, audio_info, load_audio, valid_frame_mask
from matsed_lite.presets import get_preset


def sine(freq, sr, seconds, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def test_resample_keeps_duration_and_frequency(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(440.0, 44100, 2.0), 44100, subtype="FLOAT")
    wav, n_valid = load_audio(path, 16000)
    assert wav.dtype == np.float32
    assert len(wav) == n_valid == 32000  # 2 s at 16 kHz
    assert abs(peak_hz(wav, 16000) - 440.0) <= 1.0
    # Level kept too (a sine well below Nyquist passes the filter unchanged).
    assert np.sqrt(np.mean(wav[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_stereo_is_the_channel_mean(tmp_path):
    left = sine(300.0, 16000, 0.5)
    right = sine(1000.0, 16000, 0.5, amp=0.2)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wav, _ = load_audio(path, 16000)
    np.testing.assert_allclose(wav, (left + right) / 2, atol=1e-6)
    assert audio_info(path) == (16000, 8000, 2)


@pytest.mark.parametrize("fmt,subtype,ext", [("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg")])
def test_flac_and_ogg_are_readable(tmp_path, fmt, subtype, ext):
    x = sine(500.0, 16000, 1.0)
    path = tmp_path / f"a.{ext}"
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    wav, n_valid = load_audio(path, 16000)
    assert n_valid == len(wav) == 16000
    assert abs(peak_hz(wav, 16000) - 500.0) <= 1.0
    if ext == "flac":  # lossless up to 16-bit quantisation
        np.testing.assert_allclose(wav, x, atol=1e-4)


def test_pad_and_cut_report_valid_samples(tmp_path):
    short, long_ = tmp_path / "short.wav", tmp_path / "long.wav"
    sf.write(short, sine(200.0, 16000, 0.5), 16000, subtype="FLOAT")
    sf.write(long_, sine(200.0, 16000, 1.5), 16000, subtype="FLOAT")

    wav, n_valid = load_audio(short, 16000, n_samples=16000)
    assert len(wav) == 16000 and n_valid == 8000
    assert np.all(wav[8000:] == 0) and np.any(wav[:8000] != 0)

    wav, n_valid = load_audio(long_, 16000, n_samples=16000)
    assert len(wav) == 16000 and n_valid == 16000
    np.testing.assert_allclose(wav, sine(200.0, 16000, 1.5)[:16000], atol=1e-7)


def test_frame_mask_of_a_short_clip(tmp_path):
    p = get_preset("smoke")  # 16 kHz, hop 320 (20 ms), 500 frames
    path = tmp_path / "c.wav"
    sf.write(path, sine(300.0, p.sample_rate, 3.7), p.sample_rate, subtype="FLOAT")
    wav, n_valid = load_audio(path, p.sample_rate, p.clip_samples)
    assert n_valid == 59200
    mask = valid_frame_mask(n_valid, p.n_frames, p.hop_length)
    assert mask.dtype == bool and mask.shape == (500,)
    assert mask.sum() == 185 and mask[:185].all() and not mask[185:].any()
    # A partial last frame counts (its first sample is real audio).
    assert valid_frame_mask(59201, 500, 320).sum() == 186
    assert valid_frame_mask(10 * 16000, 500, 320).all()


def test_corrupt_empty_and_missing_files_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x01garbage" + bytes(range(256)) * 4)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, np.float32), 16000)
    missing = tmp_path / "nope.wav"

    for path, what in [(corrupt, "unreadable"), (empty, "unreadable"),
                       (zero, "zero samples"), (missing, "not found")]:
        with pytest.raises(AudioError) as info:
            load_audio(path, 16000)
        assert str(path) in str(info.value) and what in str(info.value)
        assert isinstance(info.value, ValueError)
    for path in (corrupt, empty, missing):
        with pytest.raises(AudioError, match="corrupt|not found") as info:
            audio_info(path)
        assert str(path) in str(info.value)
    assert audio_info(zero) == (16000, 0, 1)  # information, not an error
