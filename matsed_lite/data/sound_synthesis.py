"""Building blocks of procedural sounds: oscillators, noises, filters, envelopes, backgrounds.

The DESED-lite class models (``impulsive_sounds``, ``stationary_sounds``) are
written with these. Everything is vectorised numpy (no per-sample Python
loops): a 10 s clip must take a few milliseconds, so that data generation never
dominates a course session. Randomness always comes from the numpy Generator
passed in, so the same generator state gives the same sound.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import signal

FADE_S = 0.005          # softens edges: a hard cut would add a broadband click
END_FLOOR = 0.1         # envelopes end at -20 dB, so the last frame is still audible
TABLE = 4096            # wavetable length (power of two: index wrap is a bit mask)


def logu(rng, lo, hi, size=None):
    """Log-uniform draw: pitch, frequency and rate feel uniform on a log scale."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def ctrl_hop(sr):
    # Envelopes and pitch curves are computed at ~500 Hz and held per block:
    # np.interp at audio rate costs more than all the synthesis around it.
    return max(8, sr // 500)


def curve(times, values, n, sr):
    """Piecewise-linear curve through (time s, value) points, n samples (float64)."""
    hop = ctrl_hop(sr)
    m = n // hop + 1
    ctrl = np.interp(np.arange(m) * (hop / sr), times, values)
    return np.repeat(ctrl, hop)[:n]


def smooth_random(rng, n, sr, rate_hz):
    """Zero-mean, unit-scale random curve changing about ``rate_hz`` times a second."""
    dur = n / sr
    k = max(2, int(np.ceil(dur * rate_hz)) + 2)
    return curve(np.linspace(0.0, dur, k), rng.standard_normal(k), n, sr)


def cycles(freq, sr, rng):
    """Running phase, in cycles, of a frequency curve (Hz, one value per sample).

    Returned as float32 of the *fraction* only: float32 keeps sin fast and the
    fraction keeps its precision however long the sound."""
    c = np.cumsum(freq / sr) + rng.random()
    c -= np.floor(c)
    return c.astype(np.float32)


def harmonic_table(amps, rng):
    """One period (``TABLE`` samples) of sum_k amps[k-1] sin(2 pi k t + random phase)."""
    amps = np.asarray(amps, dtype=np.float64)
    spec = np.zeros(TABLE // 2 + 1, dtype=np.complex128)
    k = min(len(amps), TABLE // 2 - 1)
    spec[1:k + 1] = amps[:k] * np.exp(2j * np.pi * rng.random(k))
    tab = np.fft.irfft(spec, TABLE)
    peak = np.abs(tab).max()
    return (tab / peak if peak > 0 else tab).astype(np.float32)


def osc(table, cycles):
    """Wavetable oscillator: cost independent of the number of harmonics."""
    idx = (cycles * TABLE).astype(np.int32)
    idx &= TABLE - 1
    return table[idx]


def n_harmonics(f_max, sr, cap=80):
    """Harmonics that stay below 0.45 sr: more would alias into false partials."""
    return int(max(1, min(cap, (0.45 * sr) // max(f_max, 1.0))))


def spectral_gain(gain_fn, n, sr):
    """|gain_fn| on the rfft bins of an n-sample signal, float32.

    Evaluated on a grid of at most ~2000 frequencies and held across the bins
    between them: spectral envelopes are smooth, and pow/exp on 80,000 bins
    would cost more than the FFT itself."""
    m = n // 2 + 1
    step = max(1, m // 2048)
    coarse = np.arange(0, m + step, step) * (sr / n) + 0.5 * step * sr / n
    return np.repeat(np.asarray(gain_fn(coarse), dtype=np.float32), step)[:m]


def shaped_noise(rng, n, sr, gain_fn):
    """Gaussian noise with power spectrum |gain_fn(f)|^2, made in one inverse FFT.

    Shaping in the frequency domain gives any spectral envelope (slopes, bumps,
    cut-offs) for the price of a single FFT, far cheaper than filter cascades.
    The FFT runs at a fast length >= n (a prime length would be ~10x slower)
    and is cut to n, which is harmless for stationary noise."""
    n_fft = scipy.fft.next_fast_len(n, real=True)
    m = n_fft // 2 + 1
    spec = rng.standard_normal(2 * m, dtype=np.float32).view(np.complex64)
    spec *= spectral_gain(gain_fn, n_fft, sr)
    spec[0] = 0.0  # no DC offset
    return scipy.fft.irfft(spec, n_fft)[:n]


def log_bump(f, centre, octaves):
    """Gaussian bump on a log-frequency axis (a broad resonance), peak 1."""
    x = np.log2(np.maximum(f, 1.0) / centre) / octaves
    return np.exp(-0.5 * x * x)


def resonators(freqs, bws, sr, bandpass=False):
    """Second-order sections of 2-pole resonators at ``freqs`` with bandwidths ``bws``.

    Cascaded (``bandpass=False``, unity gain at DC as in Klatt's formant
    synthesiser) they shape a voice-like spectrum; as bandpass sections they
    pass only a band."""
    rows = []
    for f, bw in zip(freqs, bws):
        f = float(np.clip(f, 20.0, 0.46 * sr))
        r = np.exp(-np.pi * float(bw) / sr)
        a1, a2 = -2.0 * r * np.cos(2.0 * np.pi * f / sr), r * r
        if bandpass:
            g = (1.0 - r * r) / 2.0
            rows.append([g, 0.0, -g, 1.0, a1, a2])
        else:
            rows.append([1.0 + a1 + a2, 0.0, 0.0, 1.0, a1, a2])
    return np.asarray(rows, dtype=np.float32)


def sosfilt(sos, x):
    return signal.sosfilt(sos, x.astype(np.float32, copy=False)).astype(np.float32, copy=False)


def ar_env(n, sr, attack_s, release_s, floor=END_FLOOR):
    """Attack/sustain/release envelope that starts and ends at ``floor``, not 0.

    Ending at -20 dB (then the 5 ms fade) keeps the event audible up to its
    annotated offset instead of leaving a silent tail inside the label."""
    t = np.arange(n, dtype=np.float32)
    a = max(1.0, attack_s * sr)
    r = max(1.0, release_s * sr)
    up = np.minimum(1.0, t / a)
    down = np.minimum(1.0, (n - 1 - t) / r)
    shape = np.minimum(up, down)
    return floor + (1.0 - floor) * shape * shape * (3.0 - 2.0 * shape)  # smoothstep


def burst_layout(rng, n, sr, lengths_s, gaps_s):
    """Place bursts so the first starts at sample 0 and the last ends at n.

    Lengths and gaps are stretched together to fill the event exactly, which
    keeps the event's audible extent equal to its labelled extent."""
    lengths_s = np.asarray(lengths_s, float)
    gaps_s = np.asarray(gaps_s, float)
    scale = (n / sr) / (lengths_s.sum() + gaps_s.sum())
    lens = lengths_s * scale * sr
    gaps = np.concatenate([[0.0], gaps_s * scale * sr])
    starts = np.round(np.cumsum(gaps) + np.concatenate([[0.0], np.cumsum(lens[:-1])])).astype(int)
    ends = np.concatenate([starts[1:] - np.round(gaps[1:]).astype(int), [n]])
    ends = np.maximum(ends, starts + 1)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


def burst_count(dur, mean_len, mean_gap, max_count):
    return int(np.clip(round((dur + mean_gap) / (mean_len + mean_gap)), 1, max_count))


def rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def unit_rms(x):
    r = rms(x)
    return x / r if r > 0 else x



def finish(x, sr):
    """Remove DC, fade both edges by FADE_S, peak-normalise to 1 (float32)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), copy=False)
    x = x - np.float32(x.mean())  # resonators and noise can leave a DC offset
    f = min(len(x) // 2, int(FADE_S * sr))
    if f > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(f) / f)).astype(np.float32)
        x[:f] *= ramp
        x[-f:] *= ramp[::-1]
    peak = float(np.abs(x).max()) if len(x) else 0.0
    return x / np.float32(peak) if peak > 0 else x


def synthesize_background(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    """A background of ``n_samples`` without any of the ten classes: float32, peak 1.

    Coloured noise of random spectral slope (white to brown), optionally with
    low rumble, room-tone resonances, a high-frequency roll-off, mains hum
    (50 or 60 Hz and harmonics) and slow level drift, mixed at random. All
    noise and hum come from one shaped spectrum and one inverse FFT, so a
    10 s background costs about as much as drawing the noise itself.
    """
    sr, n = sample_rate, int(n_samples)
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    beta = rng.uniform(0.0, 2.2)                       # spectral slope: 0 white, 1 pink, 2 brown
    rumble = rng.uniform(3.0, 15.0) if rng.random() < 0.5 else 0.0
    f_rumble = rng.uniform(40.0, 150.0)
    rooms = [(logu(rng, 100.0, 3000.0), rng.uniform(0.3, 0.8), rng.uniform(1.0, 3.0))
             for _ in range(int(rng.integers(2, 6)) if rng.random() < 0.5 else 0)]
    f_cut = logu(rng, 2000.0, 0.5 * sr) if rng.random() < 0.6 else None

    def gain(f):
        g = (np.maximum(f, 20.0) / 1000.0) ** (-beta / 2)
        if rumble:
            g = g + rumble * (f_rumble / 1000.0) ** (-beta / 2) / (1 + (f / f_rumble) ** 4)
        for centre, octaves, boost in rooms:
            g = g * (1 + boost * log_bump(f, centre, octaves))
        if f_cut is not None:
            g = g / np.sqrt(1 + (f / f_cut) ** 4)
        return g

    n_fft = scipy.fft.next_fast_len(n, real=True)
    m = n_fft // 2 + 1
    g = spectral_gain(gain, n_fft, sr)
    spec = rng.standard_normal(2 * m, dtype=np.float32).view(np.complex64)
    spec *= g
    spec[0] = 0.0
    if rng.random() < 0.35:  # mains hum: spectral lines at 50/60 Hz and harmonics
        mains = 50.0 if rng.random() < 0.5 else 60.0
        # expected mean square of the noise (Parseval; each bin has E|X|^2 = 2 g^2)
        power = 4 * np.sum(np.square(g[1:], dtype=np.float64)) / n_fft ** 2
        a1 = np.sqrt(2 * power) * 10 ** (rng.uniform(-20.0, 0.0) / 20)
        for h in range(1, int(rng.integers(2, 11))):
            b = int(round(h * mains * n_fft / sr))
            if 0 < b < m - 1:
                amp = a1 * rng.uniform(0.1, 1.0) / h ** rng.uniform(0.5, 1.5)
                spec[b] += amp * n_fft / 2 * np.exp(2j * np.pi * rng.random())
    x = scipy.fft.irfft(spec, n_fft)[:n]
    if rng.random() < 0.5:  # slow drift: traffic, ventilation, distance changes
        x *= np.maximum(1 + rng.uniform(0.05, 0.3) * smooth_random(rng, n, sr, rng.uniform(0.1, 1.0)),
                        0.2).astype(np.float32)
    x -= np.float32(x.mean())
    peak = float(np.abs(x).max())
    return x / np.float32(peak) if peak > 0 else x
