import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from matsed_lite.data.features import LogMel, frame_times, kaldi_mel_banks
from matsed_lite.presets import get_preset


def _chirp(preset, seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(preset.sample_rate * seconds)) / preset.sample_rate
    x = 0.3 * scipy.signal.chirp(t, 100, t[-1], 0.4 * preset.sample_rate)
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("name", ["smoke", "cpu"])
def test_lite_frontend_matches_librosa(name):
    p = get_preset(name)
    x = _chirp(p)
    ours = LogMel(p)(torch.from_numpy(x)).numpy()
    mel = librosa.feature.melspectrogram(
        y=x, sr=p.sample_rate, n_fft=p.n_fft, win_length=p.win_length, hop_length=p.hop_length,
        window="hann", center=True, pad_mode="reflect", power=2.0, n_mels=p.n_mels,
        fmin=p.f_min, fmax=p.f_max, htk=False, norm="slaney")
    ref = (np.log(mel + 1e-5) + 4.5) / 5
    ref = ref[:, : x.size // p.hop_length]
    assert ours.shape == ref.shape == (p.n_mels, x.size // p.hop_length)
    assert np.max(np.abs(ours - ref)) < 2e-3


def _kaldi_mel_numpy(n_mels, n_fft, sr, fmin, fmax):
    """Kaldi's mel filters written out independently: triangles on the
    mel = 1127 ln(1 + f/700) scale over the n_fft/2 bins below Nyquist."""
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)
    lo, hi = mel(fmin), mel(fmax)
    delta = (hi - lo) / (n_mels + 1)
    bin_mel = mel(np.arange(n_fft // 2) * sr / n_fft)
    banks = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, center, right = lo + m * delta, lo + (m + 1) * delta, lo + (m + 2) * delta
        up = (bin_mel - left) / (center - left)
        down = (right - bin_mel) / (right - center)
        banks[m, : n_fft // 2] = np.maximum(0.0, np.minimum(up, down))
    return banks


def test_kaldi_banks_match_independent_formula():
    ours = kaldi_mel_banks(128, 1024, 32000, 0.0, 15000.0).numpy()
    ref = _kaldi_mel_numpy(128, 1024, 32000, 0.0, 15000.0)
    assert ours.shape == (128, 513)
    np.testing.assert_allclose(ours, ref, atol=5e-5)  # torchaudio computes in float32
    assert np.all(ours[:, -1] == 0)  # PaSST's zero column for the Nyquist bin


def test_passt_frontend_matches_numpy_pipeline():
    p = get_preset("paper")
    x = _chirp(p, seconds=1.0)
    ours = LogMel(p)(torch.from_numpy(x)).numpy()
    y = x[1:] - 0.97 * x[:-1]
    window = scipy.signal.get_window("hann", p.win_length, fftbins=False)
    spec = librosa.stft(y, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
                        window=window, center=True, pad_mode="reflect")
    mel = _kaldi_mel_numpy(p.n_mels, p.n_fft, p.sample_rate, p.f_min, p.f_max) @ np.abs(spec) ** 2
    ref = ((np.log(mel + 1e-5) + 4.5) / 5)[:, : x.size // p.hop_length]
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 2e-3


def test_paper_geometry_gives_128_by_1000():
    p = get_preset("paper")
    feats = LogMel(p)(torch.zeros(2, p.clip_samples))
    assert feats.shape == (2, 128, 1000)
    assert p.frame_hop_seconds == pytest.approx(0.01)


@pytest.mark.parametrize("name", ["smoke", "cpu", "gpu"])
def test_batched_equals_one_by_one(name):
    p = get_preset(name)
    xs = torch.from_numpy(np.stack([_chirp(p, 1.0, seed=s) for s in range(3)]))
    front = LogMel(name)
    batch = front(xs)
    for i in range(3):
        torch.testing.assert_close(batch[i], front(xs[i]), atol=1e-5, rtol=1e-5)


def test_louder_signal_gives_larger_features_and_silence_floor():
    p = get_preset("smoke")
    x = torch.from_numpy(_chirp(p, 1.0))
    front = LogMel(p)
    assert front(2 * x).mean() > front(x).mean()
    silent = front(torch.zeros(p.sample_rate))
    # log(0 + 1e-5) scaled: the floor of the features.
    torch.testing.assert_close(silent, torch.full_like(silent, (np.log(1e-5) + 4.5) / 5))


def test_bad_inputs_raise_clear_errors():
    front = LogMel("smoke")
    with pytest.raises(ValueError, match="shorter than one hop"):
        front(torch.zeros(10))
    with pytest.raises(ValueError, match=r"\(N,\) or \(B, N\)"):
        front(torch.zeros(1, 2, 16000))
    with pytest.raises(ValueError, match="unknown preset"):
        LogMel("huge")


def test_frame_times():
    t = frame_times(500, "cpu")
    assert t.shape == (500,)
    assert float(t[1] - t[0]) == pytest.approx(0.02)
    assert float(t[-1]) == pytest.approx(9.98)


def test_runs_on_gpu_when_available():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    p = get_preset("gpu")
    x = torch.from_numpy(_chirp(p, 1.0))
    cpu = LogMel(p)(x)
    gpu = LogMel(p).to("cuda")(x.cuda()).cpu()
    torch.testing.assert_close(cpu, gpu, atol=1e-3, rtol=1e-3)
