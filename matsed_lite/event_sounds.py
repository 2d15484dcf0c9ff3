"""Procedural sounds for the ten DESED classes, and backgrounds without them.

DESED itself cannot be downloaded here, so DESED-lite builds its clips from
these models. A detector trained on them should have to learn what real data
asks of it: classes that differ by their *sound* (pitch, harmonicity,
spectral shape, temporal texture), and large variety inside each class, so
that memorising a few waveforms is useless. Every model therefore draws its
own pitch, length, envelope, timbre and repetition pattern from the random
generator it is given; no two events are alike, and the same generator state
always gives the same event.

Conventions
-----------
* ``synthesize_event`` returns float32 mono audio **peak-normalised to 1.0**
  (max |x| == 1). The level in a mixture is set later, by the soundscape
  mixer, from the event's RMS (see ``desed_lite``); peak 1 only makes events
  directly listenable.
* An event's audio is its *whole* audible extent: it is audible from its first
  to its last sample (edges are only softened by 5 ms fades, and decays end
  about 20 dB below the peak, not in silence), so a label's onset and offset
  are where the array starts and ends.
* Everything is vectorised numpy (no per-sample Python loops): a 10 s clip
  must take a few milliseconds, so that data generation never dominates a
  course session.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import signal

from .presets import DESED_CLASSES

# Impulsive / short events and stationary / long ones, as DESED groups them.
SHORT_CLASSES = ("Alarm_bell_ringing", "Cat", "Dishes", "Dog", "Speech")
LONG_CLASSES = ("Blender", "Electric_shaver_toothbrush", "Frying", "Running_water",
                "Vacuum_cleaner")
assert sorted(SHORT_CLASSES + LONG_CLASSES) == sorted(DESED_CLASSES)

# DESED's shortest events are 250 ms; shorter ones are hardly annotatable.
MIN_EVENT_SECONDS = 0.25

# Class-typical length ranges (seconds), drawn log-uniformly: short classes are
# one or a few bursts, long classes are stationary sounds that last.
EVENT_SECONDS = {
    "Alarm_bell_ringing": (0.5, 3.0),
    "Cat": (0.4, 2.5),
    "Dishes": (0.25, 1.5),
    "Dog": (0.3, 2.5),
    "Speech": (0.6, 3.0),
    "Blender": (3.0, 10.0),
    "Electric_shaver_toothbrush": (3.0, 10.0),
    "Frying": (3.0, 10.0),
    "Running_water": (3.0, 10.0),
    "Vacuum_cleaner": (3.0, 10.0),
}

_FADE_S = 0.005          # softens edges: a hard cut would add a broadband click
_END_FLOOR = 0.1         # envelopes end at -20 dB, so the last frame is still audible
_TABLE = 4096            # wavetable length (power of two: index wrap is a bit mask)


# ---------------------------------------------------------------------------
# small building blocks

def _logu(rng, lo, hi, size=None):
    """Log-uniform draw: pitch, frequency and rate feel uniform on a log scale."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _ctrl_hop(sr):
    # Envelopes and pitch curves are computed at ~500 Hz and held per block:
    # np.interp at audio rate costs more than all the synthesis around it.
    return max(8, sr // 500)


def _curve(times, values, n, sr):
    """Piecewise-linear curve through (time s, value) points, n samples (float64)."""
    hop = _ctrl_hop(sr)
    m = n // hop + 1
    ctrl = np.interp(np.arange(m) * (hop / sr), times, values)
    return np.repeat(ctrl, hop)[:n]


def _smooth_random(rng, n, sr, rate_hz):
    """Zero-mean, unit-scale random curve changing about ``rate_hz`` times a second."""
    dur = n / sr
    k = max(2, int(np.ceil(dur * rate_hz)) + 2)
    return _curve(np.linspace(0.0, dur, k), rng.standard_normal(k), n, sr)


def _cycles(freq, sr, rng):
    """Running phase, in cycles, of a frequency curve (Hz, one value per sample).

    Returned as float32 of the *fraction* only: float32 keeps sin fast and the
    fraction keeps its precision however long the sound."""
    c = np.cumsum(freq / sr) + rng.random()
    c -= np.floor(c)
    return c.astype(np.float32)


def _harmonic_table(amps, rng):
    """One period (``_TABLE`` samples) of sum_k amps[k-1] sin(2 pi k t + random phase)."""
    amps = np.asarray(amps, dtype=np.float64)
    spec = np.zeros(_TABLE // 2 + 1, dtype=np.complex128)
    k = min(len(amps), _TABLE // 2 - 1)
    spec[1:k + 1] = amps[:k] * np.exp(2j * np.pi * rng.random(k))
    tab = np.fft.irfft(spec, _TABLE)
    peak = np.abs(tab).max()
    return (tab / peak if peak > 0 else tab).astype(np.float32)


def _osc(table, cycles):
    """Wavetable oscillator: cost independent of the number of harmonics."""
    idx = (cycles * _TABLE).astype(np.int32)
    idx &= _TABLE - 1
    return table[idx]


def _n_harmonics(f_max, sr, cap=80):
    """Harmonics that stay below 0.45 sr: more would alias into false partials."""
    return int(max(1, min(cap, (0.45 * sr) // max(f_max, 1.0))))


def _spectral_gain(gain_fn, n, sr):
    """|gain_fn| on the rfft bins of an n-sample signal, float32.

    Evaluated on a grid of at most ~2000 frequencies and held across the bins
    between them: spectral envelopes are smooth, and pow/exp on 80,000 bins
    would cost more than the FFT itself."""
    m = n // 2 + 1
    step = max(1, m // 2048)
    coarse = np.arange(0, m + step, step) * (sr / n) + 0.5 * step * sr / n
    return np.repeat(np.asarray(gain_fn(coarse), dtype=np.float32), step)[:m]


def _shaped_noise(rng, n, sr, gain_fn):
    """Gaussian noise with power spectrum |gain_fn(f)|^2, made in one inverse FFT.

    Shaping in the frequency domain gives any spectral envelope (slopes, bumps,
    cut-offs) for the price of a single FFT, far cheaper than filter cascades.
    The FFT runs at a fast length >= n (a prime length would be ~10x slower)
    and is cut to n, which is harmless for stationary noise."""
    n_fft = scipy.fft.next_fast_len(n, real=True)
    m = n_fft // 2 + 1
    spec = rng.standard_normal(2 * m, dtype=np.float32).view(np.complex64)
    spec *= _spectral_gain(gain_fn, n_fft, sr)
    spec[0] = 0.0  # no DC offset
    return scipy.fft.irfft(spec, n_fft)[:n]


def _log_bump(f, centre, octaves):
    """Gaussian bump on a log-frequency axis (a broad resonance), peak 1."""
    x = np.log2(np.maximum(f, 1.0) / centre) / octaves
    return np.exp(-0.5 * x * x)


def _resonators(freqs, bws, sr, bandpass=False):
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


def _sosfilt(sos, x):
    return signal.sosfilt(sos, x.astype(np.float32, copy=False)).astype(np.float32, copy=False)


def _ar_env(n, sr, attack_s, release_s, floor=_END_FLOOR):
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


def _layout(rng, n, sr, lengths_s, gaps_s):
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


def _burst_count(dur, mean_len, mean_gap, max_count):
    return int(np.clip(round((dur + mean_gap) / (mean_len + mean_gap)), 1, max_count))


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _unit_rms(x):
    r = _rms(x)
    return x / r if r > 0 else x


# ---------------------------------------------------------------------------
# short, impulsive classes

def _alarm(rng, n, sr):
    """Bells (inharmonic partials re-struck by a clapper or a striker), beepers
    (square-ish tones gated on/off, sometimes two-tone) or sweeping alarms."""
    dur = n / sr
    t = np.arange(n, dtype=np.float32) / sr
    kind = rng.choice(3, p=[0.4, 0.35, 0.25])
    if kind == 0:  # bell
        f_base = _logu(rng, 500.0, min(2200.0, 0.2 * sr))
        n_part = int(rng.integers(4, 8))
        ratios = np.concatenate([[1.0], np.sort(rng.uniform(1.3, 5.5, n_part - 1))])
        ratios = ratios[f_base * ratios < 0.45 * sr]
        amps = rng.uniform(0.3, 1.0, len(ratios)) / ratios ** rng.uniform(0.3, 1.0)
        tau0 = _logu(rng, 0.08, 0.8)
        if rng.random() < 0.55:  # electric bell: the clapper hits 12-25 times a second
            period = 1.0 / rng.uniform(12.0, 25.0)
            tail = 0.0
        else:  # separate rings ("ding ... ding")
            period = 1.0 / rng.uniform(1.5, 6.0)
            tail = min(dur, 2.3 * tau0)  # the last ring must still be heard at the end
        span = max(0.0, dur - tail)
        k = max(1, int(span / period) + 1)
        times = np.linspace(0.0, span, k) if k > 1 else np.zeros(1)
        times[1:-1] += rng.uniform(-0.1, 0.1, max(0, k - 2)) * period
        pos = np.clip(np.round(times * sr).astype(int), 0, n - 1)
        strikes = np.zeros(n, dtype=np.float32)
        np.add.at(strikes, pos, rng.uniform(0.6, 1.0, k).astype(np.float32))
        out = np.zeros(n, dtype=np.float32)
        # Low partials ring longer than high ones: two decay groups, one filter each.
        for group, tau in ((ratios < 2.5, tau0), (ratios >= 2.5, tau0 * 0.4)):
            if not group.any():
                continue
            env = signal.lfilter(np.float32([1.0]), np.float32([1.0, -np.exp(-1.0 / (tau * sr))]),
                                 strikes).astype(np.float32)
            tone = np.zeros(n, dtype=np.float32)
            for f, a in zip(f_base * ratios[group], amps[group]):
                tone += np.float32(a) * np.sin(np.float32(2 * np.pi * f) * t + np.float32(rng.uniform(0, 6.3)))
            out += env * tone
        return out
    if kind == 1:  # beeper / buzzer
        f = _logu(rng, 600.0, min(3200.0, 0.3 * sr))
        ratio = rng.uniform(1.2, 1.5) if rng.random() < 0.3 else 1.0
        kmax = _n_harmonics(f * ratio, sr, cap=25)
        k = np.arange(1, kmax + 1)
        odd = rng.random() < 0.6  # square-ish buzzers have odd harmonics only
        amps = np.where((k % 2 == 1) | (not odd), k ** -rng.uniform(0.8, 1.8), 0.0)
        table = _harmonic_table(amps, rng)
        on = rng.uniform(0.05, 0.4)
        period = on * (1.0 + rng.uniform(0.3, 1.5))
        m = max(1, int((dur - on) / period)) if dur > on else 0
        if m > 0:
            period = (dur - on) / m  # whole beeps: the event starts and ends on one
        beep = np.floor(t / period) if m > 0 else np.zeros(n, np.float32)
        gate = ((t - beep * period) < on).astype(np.float32) if m > 0 else np.ones(n, np.float32)
        a = np.exp(-1.0 / (0.002 * sr))  # 2 ms edges: a hard gate would click
        gate = signal.lfilter(np.float32([1 - a]), np.float32([1.0, -a]), gate).astype(np.float32)
        freq = np.where(beep % 2 == 1, f * ratio, f).astype(np.float64)
        return _osc(table, _cycles(freq, sr, rng)) * gate
    # sweeping alarm (siren-like or "whoop")
    f_lo = _logu(rng, 500.0, min(1500.0, 0.15 * sr))
    f_hi = min(f_lo * rng.uniform(1.3, 2.5), 0.4 * sr)
    rate = _logu(rng, 0.5, 8.0)
    ph = rate * t + rng.random()
    lfo = (ph - np.floor(ph)) if rng.random() < 0.4 else 0.5 - 0.5 * np.cos(2 * np.pi * ph)
    freq = f_lo * (f_hi / f_lo) ** lfo.astype(np.float64)
    kmax = _n_harmonics(f_hi, sr, cap=8)
    table = _harmonic_table(np.arange(1, kmax + 1) ** -rng.uniform(1.5, 3.0), rng)
    return _osc(table, _cycles(freq, sr, rng))


def _cat(rng, n, sr):
    """Meows: a harmonic glide (rise then fall) with vibrato, whose formants open
    and close ("m-ee-ow") by cross-fading two resonator cascades."""
    dur = n / sr
    f_cat = _logu(rng, 380.0, 850.0)            # this cat's voice
    tilt = rng.uniform(0.6, 1.4)
    open_f = np.array([_logu(rng, 900, 1400), _logu(rng, 1800, 3000), _logu(rng, 3500, 4500)])
    closed_f = open_f * np.array([rng.uniform(0.5, 0.75), rng.uniform(0.5, 0.8), 0.9])
    bws = np.array([rng.uniform(100, 250), rng.uniform(150, 350), rng.uniform(250, 500)])
    keep = open_f < 0.45 * sr
    sos_open = _resonators(open_f[keep], bws[keep], sr)
    sos_closed = _resonators(closed_f[keep], bws[keep], sr)
    count = 1 if dur < 0.8 else int(rng.integers(1, min(3, int(dur / 0.45)) + 1))
    lengths = rng.uniform(0.6, 1.4, count)
    gaps = rng.uniform(0.05, 0.35, count - 1) / max(1.0, count / 2.0)
    out = np.zeros(n, dtype=np.float32)
    for start, length in _layout(rng, n, sr, lengths, gaps):
        tt = np.linspace(0.0, 1.0, length)
        f_start = f_cat * rng.uniform(0.85, 1.15)
        peak_at = rng.uniform(0.2, 0.6)
        rise = rng.uniform(0.1, 0.6)
        fall = rng.uniform(0.2, 0.5)
        bump = np.sin(np.pi * np.minimum(1.0, tt / (2 * peak_at)))
        contour = 1.0 + rise * bump - fall * np.maximum(0.0, tt - peak_at) ** 2 / (1 - peak_at) ** 2
        vib = 1.0 + rng.uniform(0.003, 0.03) * np.sin(2 * np.pi * rng.uniform(4, 8) * tt * length / sr)
        freq = f_start * contour * vib
        kmax = _n_harmonics(freq.max(), sr, cap=30)
        k = np.arange(1, kmax + 1)
        table = _harmonic_table(k ** -tilt * rng.lognormal(0.0, 0.3, kmax), rng)
        src = _osc(table, _cycles(freq, sr, rng))
        src += 0.05 * rng.standard_normal(length, dtype=np.float32)  # breath
        mouth = np.sin(np.pi * tt) ** rng.uniform(0.5, 2.0)
        mouth = mouth.astype(np.float32)
        y = (1 - mouth) * _sosfilt(sos_closed, src) + mouth * _sosfilt(sos_open, src)
        env = _ar_env(length, sr, rng.uniform(0.02, 0.08), rng.uniform(0.06, 0.2))
        out[start:start + length] += y * env * rng.uniform(0.6, 1.0)
    return out


def _dishes(rng, n, sr):
    """Clinks: each hit excites a few high, inharmonic, quickly damped partials of
    one of the objects in the scene (plates, glasses, cutlery), plus a click."""
    f_top = min(9000.0, 0.45 * sr)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(3, 8))
        freqs = _logu(rng, 1500.0, f_top, k)
        taus = _logu(rng, 0.01, 0.15, k) * (1.0 if rng.random() < 0.7 else 2.5)  # glass rings on
        amps = rng.uniform(0.2, 1.0, k)
        amps[np.argmax(taus)] = 1.0  # the longest-ringing partial is what is heard last
        objects.append((freqs, taus, amps))
    longest = max(o[1].max() for o in objects)
    ringing = max(range(len(objects)), key=lambda i: objects[i][1].max())
    hit_len = int(min(n, 2.3 * longest * sr))  # a hit decays to -20 dB over hit_len
    span = n - hit_len
    if span > 0:
        rate = _logu(rng, 2.0, 12.0)  # hits per second (clattering at the high end)
        count = min(2 + int(rng.poisson(rate * span / sr)), 40)
        starts = np.sort(rng.integers(0, span + 1, count))
        starts[0], starts[-1] = 0, span  # the first hit opens the event, the last closes it
    else:
        starts = np.zeros(1, dtype=int)
    t = np.arange(hit_len, dtype=np.float32) / sr
    out = np.zeros(n, dtype=np.float32)
    click_len = max(8, int(0.002 * sr))
    for i, s in enumerate(starts):
        last = i == len(starts) - 1
        # The closing hit uses the longest-ringing object, so the event is heard to its end.
        freqs, taus, amps = objects[ringing if last else int(rng.integers(len(objects)))]
        jit = rng.uniform(0.97, 1.03, len(freqs))
        fit = min(1.0, (n - s) / sr / (2.3 * taus.max()))  # shorten decays that would overrun
        env = np.exp(-t[:, None] / np.float32(taus * fit)[None, :])
        hit = (np.sin(t[:, None] * np.float32(2 * np.pi * freqs * jit)[None, :]
                      + np.float32(rng.uniform(0, 6.3, len(freqs))))
               * env * np.float32(amps)).sum(axis=1)
        hit[:click_len] += rng.uniform(0.2, 1.0) * rng.standard_normal(click_len, dtype=np.float32)
        end = min(n, s + hit_len)
        out[s:end] += hit[:end - s] * rng.uniform(0.3, 1.0)
    return out


def _dog(rng, n, sr):
    """Barks: short, noisy harmonic bursts with a fast pitch rise and fall, shaped
    by the dog's formants (their height follows the dog's size); or a growl."""
    dur = n / sr
    size = rng.random()  # 0 = small dog, 1 = big dog
    f_dog = np.exp(np.interp(size, [0, 1], np.log([750.0, 170.0]))) * rng.lognormal(0, 0.1)
    formants = np.array([np.interp(size, [0, 1], [1100, 500]), np.interp(size, [0, 1], [2500, 1300]),
                         3300.0]) * rng.uniform(0.85, 1.15, 3)
    bws = rng.uniform(150, 400, 3)
    keep = formants < 0.45 * sr
    sos = _resonators(formants[keep], bws[keep], sr)
    growl = dur > 0.6 and rng.random() < 0.15
    if growl:
        segments = [(0, n)]
    else:
        mean_len = rng.uniform(0.08, 0.2) * (1 + 0.5 * size)
        mean_gap = rng.uniform(0.1, 0.45)
        count = _burst_count(dur, mean_len, mean_gap, 12)
        segments = _layout(rng, n, sr, mean_len * rng.uniform(0.8, 1.2, count),
                           mean_gap * rng.uniform(0.6, 1.4, count - 1))
    tilt = rng.uniform(0.4, 0.9)
    voicing = rng.uniform(0.25, 0.7)  # barks are harsh: much of their energy is noise
    out = np.zeros(n, dtype=np.float32)
    for start, length in segments:
        tt = np.linspace(0.0, 1.0, length)
        if growl:
            freq = f_dog * rng.uniform(0.35, 0.55) * (1 + 0.05 * np.sin(2 * np.pi * tt * rng.uniform(1, 3)))
        else:
            freq = f_dog * rng.uniform(0.9, 1.1) * (0.75 + 0.45 * np.sin(np.pi * tt ** 0.6))
        kmax = _n_harmonics(freq.max(), sr, cap=40)
        table = _harmonic_table(np.arange(1, kmax + 1) ** -tilt, rng)
        src = voicing * _osc(table, _cycles(freq, sr, rng))
        src += (1 - voicing) * 1.5 * rng.standard_normal(length, dtype=np.float32)
        if growl:  # growls are rough: fast amplitude flutter
            flutter = rng.uniform(18, 35) * np.arange(length) / sr
            src *= (1.0 - rng.uniform(0.4, 0.8) * (0.5 + 0.5 * np.sin(2 * np.pi * flutter))).astype(np.float32)
            env = _ar_env(length, sr, 0.1, 0.15)
        else:
            env = _ar_env(length, sr, rng.uniform(0.004, 0.015), length / sr * rng.uniform(0.5, 0.8))
        out[start:start + length] += src * env * rng.uniform(0.6, 1.0)
    return _sosfilt(sos, out)


# Vowel formants (F1, F2, F3, Hz) of an adult male voice (Peterson & Barney).
_VOWELS = np.array([
    (270, 2290, 3010), (390, 1990, 2550), (530, 1840, 2480), (660, 1720, 2410),
    (730, 1090, 2440), (570, 840, 2410), (440, 1020, 2240), (300, 870, 2240),
    (640, 1190, 2390), (490, 1350, 1690),
], dtype=float)


def _speech(rng, n, sr):
    """Syllable trains: a voiced harmonic source whose pitch follows a phrase
    contour (declination plus accents), through formant filters that glide from
    one vowel to another within each syllable; noise consonants; pauses."""
    dur = n / sr
    f_speaker = _logu(rng, 85.0, 260.0)
    tract = rng.uniform(0.85, 1.25) * (f_speaker / 130.0) ** 0.15  # higher voices, shorter tracts
    syl = rng.uniform(0.12, 0.28)
    pause_p = rng.uniform(0.1, 0.35)
    count = _burst_count(dur, syl, 0.03 + 0.25 * pause_p, 40)
    gaps = np.where(rng.random(max(0, count - 1)) < pause_p, rng.uniform(0.12, 0.4, max(0, count - 1)),
                    rng.uniform(0.0, 0.05, max(0, count - 1)))
    segments = _layout(rng, n, sr, syl * rng.uniform(0.6, 1.5, count), gaps)
    t_rel = np.arange(n) / max(n - 1, 1)
    decl = rng.uniform(0.1, 0.35)
    freq = f_speaker * (1 + decl / 2 - decl * t_rel)
    freq *= 1 + 0.04 * _smooth_random(rng, n, sr, 6.0)
    accents = np.ones(n)
    for start, length in segments:
        accents[start:start + length] = 1 + rng.uniform(-0.12, 0.25) * np.sin(np.linspace(0, np.pi, length))
    freq *= accents
    kmax = _n_harmonics(freq.max(), sr, cap=60)
    k = np.arange(1, kmax + 1)
    table = _harmonic_table(k ** -rng.uniform(0.8, 1.4), rng)
    voice = _osc(table, _cycles(freq, sr, rng))
    breath = rng.uniform(0.01, 0.08)
    out = np.zeros(n, dtype=np.float32)
    bws = np.array([70.0, 100.0, 140.0]) * rng.uniform(0.8, 1.4)
    for start, length in segments:
        v0, v1 = _VOWELS[rng.integers(len(_VOWELS), size=2)]
        f0s, f1s = v0 * tract, v1 * tract
        keep = f1s < 0.45 * sr
        src = voice[start:start + length] + breath * rng.standard_normal(length, dtype=np.float32)
        glide = np.linspace(0.0, 1.0, length, dtype=np.float32)
        glide = glide * glide * (3 - 2 * glide)
        y = (1 - glide) * _sosfilt(_resonators(f0s[keep], bws[keep], sr), src) \
            + glide * _sosfilt(_resonators(f1s[keep], bws[keep], sr), src)
        y *= _ar_env(length, sr, rng.uniform(0.015, 0.04), rng.uniform(0.03, 0.08))
        if rng.random() < 0.5:  # consonant: a noise burst (fricative or plosive release)
            c_len = min(length, int(rng.uniform(0.03, 0.1) * sr))
            fc = _logu(rng, 2500.0, min(7000.0, 0.42 * sr))
            burst = _sosfilt(_resonators([fc], [rng.uniform(800, 3000)], sr, bandpass=True),
                             rng.standard_normal(c_len, dtype=np.float32))
            burst *= np.linspace(1.0, 0.2, c_len, dtype=np.float32) * np.float32(rng.uniform(0.1, 0.5))
            y[:c_len] += burst * np.float32(np.abs(y).max() / max(np.abs(burst).max(), 1e-9))
        out[start:start + length] += y
    return out


# ---------------------------------------------------------------------------
# long, stationary classes

def _blender(rng, n, sr):
    """Motor harmonics plus churning broadband noise; the speed steps between
    settings (with ramps), the load makes the level flutter."""
    dur = n / sr
    n_set = int(rng.integers(1, 5))
    levels = _logu(rng, 100.0, 400.0, n_set)  # motor frequency per speed setting
    bounds = np.sort(rng.uniform(0.0, dur, n_set - 1))
    times, values = [0.0], [levels[0] * (rng.uniform(0.5, 0.8) if rng.random() < 0.5 else 1.0)]
    ramp = rng.uniform(0.1, 0.6)
    times.append(min(ramp, dur)); values.append(levels[0])
    for b, lv_prev, lv in zip(bounds, levels[:-1], levels[1:]):
        if b > times[-1]:
            times += [b, min(b + ramp, dur)]
            values += [lv_prev, lv]
    times.append(dur + 1.0); values.append(values[-1])
    freq = _curve(np.array(times), np.array(values), n, sr)
    freq *= 1 + 0.01 * _smooth_random(rng, n, sr, 5.0)
    kmax = _n_harmonics(freq.max(), sr, cap=60)
    k = np.arange(1, kmax + 1)
    table = _harmonic_table(k ** -rng.uniform(0.5, 1.2) * rng.lognormal(0, 0.5, kmax), rng)
    harm = _osc(table, _cycles(freq, sr, rng))
    centre, width = _logu(rng, 300.0, 1500.0), rng.uniform(0.7, 1.3)
    noise = _shaped_noise(rng, n, sr, lambda f: _log_bump(f, centre, width) + 0.05)
    mix = rng.uniform(0.5, 0.85)  # the motor's whine dominates the churning
    speed = (freq / levels.mean()).astype(np.float32)
    load = 1.0 + rng.uniform(0.2, 0.6) * _smooth_random(rng, n, sr, rng.uniform(3, 12))  # chunks hit the blades
    body = mix * _unit_rms(harm) + (1 - mix) * _unit_rms(noise)
    return body * speed * np.maximum(load, 0.2).astype(np.float32)  # faster is louder


def _shaver(rng, n, sr):
    """A high, steady buzz: a harmonic comb whose strongest harmonics sit at
    1-6 kHz, slowly amplitude-modulated as it moves over face or teeth."""
    f0 = _logu(rng, 80.0, 300.0)
    peak = _logu(rng, 1200.0, min(6000.0, 0.4 * sr))
    width = rng.uniform(0.5, 1.5)
    kmax = _n_harmonics(f0, sr, cap=120)
    k = np.arange(1, kmax + 1)
    amps = np.exp(-0.5 * (np.log2(k * f0 / peak) / width) ** 2) + 0.05 / k
    if rng.random() < 0.4:  # square-ish drive: odd harmonics dominate
        amps[1::2] *= 0.2
    table = _harmonic_table(amps, rng)
    freq = np.full(n, f0) * (1 + 0.003 * _smooth_random(rng, n, sr, 1.0))
    buzz = _osc(table, _cycles(freq, sr, rng))
    t = np.arange(n, dtype=np.float32) / sr
    am = 1 + rng.uniform(0.1, 0.5) * np.sin(np.float32(2 * np.pi * _logu(rng, 0.2, 2.0)) * t
                                           + np.float32(rng.uniform(0, 6.3)))
    if rng.random() < 0.25:  # "pulse" mode of toothbrushes
        rate, duty = rng.uniform(1.0, 4.0), rng.uniform(0.5, 0.8)
        ph = rate * t
        gate = ((ph - np.floor(ph)) < duty).astype(np.float32)
        a = np.exp(-1.0 / (0.005 * sr))  # 5 ms edges, not clicks
        am *= signal.lfilter(np.float32([1 - a]), np.float32([1.0, -a]), np.maximum(gate, 0.3)).astype(np.float32)
    hiss = _shaped_noise(rng, n, sr, lambda f: (f > 2000.0) * 1.0 + 0.01)
    return (buzz + rng.uniform(0.02, 0.1) * _unit_rms(hiss)) * am


def _frying(rng, n, sr):
    """Crackle: a dense random train of heavy-tailed impulses ringing through a
    bright resonance, over a hiss whose level drifts."""
    dur = n / sr
    rate = _logu(rng, 100.0, 2000.0)
    count = int(rng.poisson(rate * dur))
    pos = rng.integers(0, n, count)
    # Heavy-tailed sizes (a few loud pops among many ticks), capped so that one
    # pop cannot dwarf the rest of the event.
    amp = np.minimum(rng.pareto(rng.uniform(1.5, 3.0), count) + 0.2, 20.0) * rng.choice([-1.0, 1.0], count)
    imp = np.bincount(pos, weights=amp, minlength=n).astype(np.float32)
    fc = _logu(rng, 1500.0, min(6000.0, 0.42 * sr))
    crackle = _sosfilt(_resonators([fc], [rng.uniform(1000, 4000)], sr, bandpass=True), imp)
    hp = rng.uniform(1000.0, 3000.0)
    slope = rng.uniform(0.0, 1.0)
    hiss = _shaped_noise(rng, n, sr, lambda f: (np.minimum(f / hp, 1.0) ** 4) * (np.maximum(f, hp) / hp) ** -slope)
    drift = np.maximum(1 + 0.3 * _smooth_random(rng, n, sr, rng.uniform(0.3, 2.0)), 0.2).astype(np.float32)
    mix = rng.uniform(0.4, 0.85)
    return (mix * _unit_rms(crackle) + (1 - mix) * _unit_rms(hiss)) * drift


def _running_water(rng, n, sr):
    """Band-limited noise with a gurgling modulation, plus bubbles: short decaying
    tones whose pitch rises (Minnaert resonances of collapsing air pockets)."""
    dur = n / sr
    centre, width = _logu(rng, 500.0, 3000.0), rng.uniform(0.8, 2.0)
    base = _shaped_noise(rng, n, sr, lambda f: _log_bump(f, centre, width) + 0.02)
    gurgle = np.maximum(1 + rng.uniform(0.2, 0.6) * _smooth_random(rng, n, sr, rng.uniform(8, 30)), 0.1)
    base = _unit_rms(base * gurgle.astype(np.float32))
    rate = _logu(rng, 20.0, 120.0)
    count = min(int(rng.poisson(rate * dur)), 1500)
    blen = int(0.015 * sr)  # 15 ms holds a bubble down to about -25 dB
    bubbles = np.zeros(n, dtype=np.float32)
    if count:
        f = _logu(rng, 300.0, min(2500.0, 0.4 * sr), count).astype(np.float32)
        tau = rng.uniform(0.002, 0.0055, count).astype(np.float32)
        xi = rng.uniform(0.05, 0.3, count).astype(np.float32)  # pitch rise per decay time
        t = np.arange(blen, dtype=np.float32) / sr
        # f(t) = f0 (1 + xi t / tau)  ->  phase = 2 pi f0 (t + xi t^2 / (2 tau))
        ph = (2 * np.pi * f)[:, None] * (t[None, :] + (xi / (2 * tau))[:, None] * t[None, :] ** 2)
        vals = np.sin(ph) * np.exp(-t[None, :] / tau[:, None]) * rng.uniform(0.2, 1.0, count).astype(np.float32)[:, None]
        pos = rng.integers(0, max(1, n - blen), count)
        idx = (pos[:, None] + np.arange(blen)[None, :]).ravel()
        bubbles = np.bincount(idx, weights=vals.ravel(), minlength=n)[:n].astype(np.float32)
    mix = rng.uniform(0.3, 0.7)
    return mix * base + (1 - mix) * _unit_rms(bubbles)


def _vacuum(rng, n, sr):
    """Loud, nearly white broadband noise with a broad bump, plus the whine of
    the fan (blade-pass tone and motor harmonics); it may spin up or down."""
    dur = n / sr
    slope = rng.uniform(-0.3, 0.6)
    centre, boost = _logu(rng, 400.0, 2500.0), rng.uniform(1.0, 4.0)
    cut = rng.uniform(4000.0, 0.5 * sr)
    noise = _shaped_noise(rng, n, sr, lambda f: (np.maximum(f, 50.0) / 1000.0) ** (-slope / 2)
                          * (1 + boost * _log_bump(f, centre, 1.2)) / (1 + (f / cut) ** 4))
    blades = int(rng.integers(5, 13))
    f_whine = _logu(rng, 900.0, min(5000.0, 0.4 * sr))
    f_motor = f_whine / blades
    kmax = _n_harmonics(f_motor, sr, cap=3 * blades)
    amps = np.zeros(kmax)
    amps[:min(3, kmax)] = rng.uniform(0.05, 0.3) * np.array([1.0, 0.5, 0.25])[:min(3, kmax)]
    for h, a in ((1, 1.0), (2, 0.3), (3, 0.1)):
        if h * blades <= kmax:
            amps[h * blades - 1] += a
    table = _harmonic_table(amps, rng)
    times, speed = [0.0, dur + 1.0], [1.0, 1.0]
    if rng.random() < 0.3 and dur > 2.0:  # spin-up
        times, speed = [0.0, rng.uniform(0.5, 1.5)] + times[1:], [rng.uniform(0.4, 0.7), 1.0] + speed[1:]
    if rng.random() < 0.2 and dur > 3.0:  # spin-down
        t_end = dur - rng.uniform(0.5, 1.5)
        times, speed = times[:-1] + [t_end, dur + 1.0], speed[:-1] + [1.0, rng.uniform(0.5, 0.7)]
    spd = _curve(np.array(times), np.array(speed), n, sr)
    spd *= 1 + 0.004 * _smooth_random(rng, n, sr, 0.5)
    whine = _osc(table, _cycles(f_motor * spd, sr, rng))
    level = 10 ** (rng.uniform(-20.0, -6.0) / 20)
    wave = _unit_rms(noise) + level * _unit_rms(whine)
    nozzle = 1 + rng.uniform(0.05, 0.25) * _smooth_random(rng, n, sr, rng.uniform(0.3, 1.0))
    return wave * (spd * spd * nozzle).astype(np.float32)


_MODELS = {
    "Alarm_bell_ringing": _alarm,
    "Blender": _blender,
    "Cat": _cat,
    "Dishes": _dishes,
    "Dog": _dog,
    "Electric_shaver_toothbrush": _shaver,
    "Frying": _frying,
    "Running_water": _running_water,
    "Speech": _speech,
    "Vacuum_cleaner": _vacuum,
}


def _check_label(label):
    if label not in _MODELS:
        raise ValueError(f"unknown sound event label {label!r}; DESED-lite knows "
                         f"{', '.join(DESED_CLASSES)}")


def draw_event_duration(label: str, rng: np.random.Generator) -> float:
    """A class-typical event length in seconds (log-uniform in ``EVENT_SECONDS``).

    Kept apart from synthesis so a soundscape can fix its labels and timings
    from one random stream without rendering any audio."""
    _check_label(label)
    lo, hi = EVENT_SECONDS[label]
    return float(max(MIN_EVENT_SECONDS, _logu(rng, lo, hi)))


def _finish(x, sr):
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), copy=False)
    x = x - np.float32(x.mean())  # resonators and noise can leave a DC offset
    f = min(len(x) // 2, int(_FADE_S * sr))
    if f > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(f) / f)).astype(np.float32)
        x[:f] *= ramp
        x[-f:] *= ramp[::-1]
    peak = float(np.abs(x).max()) if len(x) else 0.0
    return x / np.float32(peak) if peak > 0 else x


def synthesize_event(label: str, rng: np.random.Generator, sample_rate: int,
                     duration: float | None = None) -> np.ndarray:
    """Synthesise one event of class ``label``: float32 mono, peak-normalised to 1.

    ``duration`` (seconds) fixes the length to ``round(duration * sample_rate)``
    samples; ``None`` draws a class-typical length (``draw_event_duration``).
    The sound is audible from the first to the last sample, so the array's
    extent is the event's onset-to-offset extent. Raises ``ValueError`` for an
    unknown label or a duration under ``MIN_EVENT_SECONDS``.
    """
    _check_label(label)
    if duration is None:
        duration = draw_event_duration(label, rng)
    n = int(round(duration * sample_rate))
    if n < int(round(MIN_EVENT_SECONDS * sample_rate)):
        raise ValueError(f"{label} event of {duration:.3f} s is shorter than the minimum "
                         f"{MIN_EVENT_SECONDS} s")
    x = _MODELS[label](rng, n, sample_rate)
    assert len(x) == n, (label, len(x), n)
    return _finish(x, sample_rate)


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
    rooms = [(_logu(rng, 100.0, 3000.0), rng.uniform(0.3, 0.8), rng.uniform(1.0, 3.0))
             for _ in range(int(rng.integers(2, 6)) if rng.random() < 0.5 else 0)]
    f_cut = _logu(rng, 2000.0, 0.5 * sr) if rng.random() < 0.6 else None

    def gain(f):
        g = (np.maximum(f, 20.0) / 1000.0) ** (-beta / 2)
        if rumble:
            g = g + rumble * (f_rumble / 1000.0) ** (-beta / 2) / (1 + (f / f_rumble) ** 4)
        for centre, octaves, boost in rooms:
            g = g * (1 + boost * _log_bump(f, centre, octaves))
        if f_cut is not None:
            g = g / np.sqrt(1 + (f / f_cut) ** 4)
        return g

    n_fft = scipy.fft.next_fast_len(n, real=True)
    m = n_fft // 2 + 1
    g = _spectral_gain(gain, n_fft, sr)
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
        x *= np.maximum(1 + rng.uniform(0.05, 0.3) * _smooth_random(rng, n, sr, rng.uniform(0.1, 1.0)),
                        0.2).astype(np.float32)
    x -= np.float32(x.mean())
    peak = float(np.abs(x).max())
    return x / np.float32(peak) if peak > 0 else x
