"""A broad family of procedural sounds: the encoder's stand-in for AudioSet.

MAT-SED starts from PaSST trained on AudioSet's 527 classes, whose features
are general. PaSST-lite trained on DESED-lite's ten classes only learns those
ten. This module widens the pre-training corpus: ``FAMILY_CLASSES`` holds the
ten DESED classes (rendered by ``event_sounds.synthesize_event``, so the
encoder still learns them) plus a few dozen other procedural sound types:
tones, glides and sweeps, birds and insects, voices, noises of several
colours, impacts and click trains, engines and hums, sirens and phones,
bells and chimes, plucked strings, drums, textures (rain, fire, wind,
bubbles, applause) and synthesiser timbres.

The corpus is *streamed*: ``render_tagging_clip(index, seed)`` mixes a
10 s soundscape from fresh random streams, so pre-training can draw as many
new clips as it has steps, and nothing is written to disk.

Conventions (as in ``event_sounds``)
-----------------------------------
* ``synthesize_family_event`` returns float32 mono audio peak-normalised to
  1.0, audible from its first to its last sample, so the array's extent is
  the event's labelled extent.
* Every model draws its pitch, length, envelope, timbre and repetition from
  the ``numpy.random.Generator`` it is given: the same generator state gives
  the same audio.
* Vectorised numpy only (no per-sample Python loops): a 10 s clip renders in
  milliseconds.
* A clip is determined by ``(seed, index)`` through ``numpy.random.SeedSequence``:
  clips can be drawn in any order, in parallel, or again after a resume, and
  come out the same.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
import torch
from scipy import signal

from .desed_lite import (BACKGROUND_DBFS, EVENT_COUNT_P, EVENT_COUNTS, PEAK_LIMIT, SNR_DB,
                         active_rms)
from .event_sounds import (_VOWELS, MIN_EVENT_SECONDS, _ar_env, _curve, _cycles, _finish,
                           _harmonic_table, _layout, _log_bump, _logu, _n_harmonics, _osc,
                           _resonators, _rms, _shaped_noise, _smooth_random, _sosfilt, _speech,
                           _unit_rms, draw_event_duration, synthesize_background,
                           synthesize_event)
from .features import LogMel
from .labels import events_to_frames
from .presets import DESED_CLASSES, Preset, get_preset

# Bump when a change makes the same (seed, index) give different audio or labels.
FAMILY_VERSION = "1"
# The clip streams' middle entropy word: disjoint from DESED-lite's split offsets (0-11).
STREAM_ID = 100
SHORTENED_P = 0.25      # share of events cut shorter than their class-typical length

_TWO_PI = np.float32(2 * np.pi)


# ---------------------------------------------------------------------------
# building blocks (on top of event_sounds' helpers)

def _time(n, sr):
    return np.arange(n, dtype=np.float32) / np.float32(sr)


def _sine(freq, sr, rng):
    """Sine of a frequency curve (Hz per sample), random start phase."""
    return np.sin(_TWO_PI * _cycles(np.asarray(freq, dtype=np.float64), sr, rng))


def _tone(rng, freq, sr, amps):
    """Harmonic tone with harmonic amplitudes ``amps`` along a frequency curve."""
    return _osc(_harmonic_table(amps, rng), _cycles(np.asarray(freq, dtype=np.float64), sr, rng))


def _smooth_gate(g, sr, edge_s=0.003):
    """A 0/1 gate with its edges softened by a one-pole filter (no clicks)."""
    a = np.exp(-1.0 / max(1.0, edge_s * sr))
    return signal.lfilter(np.float32([1 - a]), np.float32([1.0, -a]),
                          g.astype(np.float32)).astype(np.float32)


def _periodic_gate(n, sr, period_s, on_s, edge_s=0.003, phase=0.0):
    t = np.arange(n) / sr
    ph = (t / period_s + phase) % 1.0
    return _smooth_gate(ph < on_s / period_s, sr, edge_s)


def _fit_onsets(iois, span):
    """Onsets (samples) from inter-onset intervals, stretched so the first onset is
    at 0 and the last at ``span``: a pattern that fills the event exactly."""
    if span <= 0 or len(iois) == 0:
        return np.zeros(1, dtype=np.int64)
    pos = np.concatenate([[0.0], np.cumsum(iois)])
    return np.round(pos / pos[-1] * span).astype(np.int64)


def _count(dur, ioi, cap):
    return int(np.clip(round(dur / max(ioi, 1e-3)), 1, cap))


def _impulses(n, pos, amps):
    return np.bincount(pos, weights=amps, minlength=n)[:n].astype(np.float32)


def _place(n, pos, amps, template):
    """Copies of ``template`` at ``pos`` with gains ``amps`` (one FFT convolution)."""
    imp = _impulses(n, pos, amps)
    return signal.fftconvolve(imp, template.astype(np.float32))[:n].astype(np.float32)


def _scatter(n, pos, hits):
    """Add rows of ``hits`` (count, L) at sample positions ``pos``, cut at n."""
    count, length = hits.shape
    idx = pos[:, None] + np.arange(length)[None, :]
    keep = idx < n
    return np.bincount(idx[keep], weights=hits[keep], minlength=n)[:n].astype(np.float32)


def _modes(length, sr, freqs, taus, amps, rng):
    """One impact: a sum of exponentially damped sines (length samples)."""
    t = _time(length, sr)[:, None]
    freqs, taus, amps = (np.asarray(v, np.float32)[None, :] for v in (freqs, taus, amps))
    ph = np.float32(rng.uniform(0, 2 * np.pi, freqs.shape[1]))[None, :]
    return (np.sin(_TWO_PI * freqs * t + ph) * np.exp(-t / taus) * amps).sum(axis=1)


def _struck(n, sr, strikes, freqs, taus, amps, rng):
    """Modes re-excited by a strike train (impulses, length n): each mode's
    envelope is the strike train through a one-pole decay, so overlapping rings
    add as they would in a real resonator."""
    t = _time(n, sr)
    out = np.zeros(n, dtype=np.float32)
    for f, tau, a in zip(freqs, taus, amps):
        if f >= 0.47 * sr:
            continue
        env = signal.lfilter(np.float32([1.0]), np.float32([1.0, -np.exp(-1.0 / (tau * sr))]), strikes)
        out += np.float32(a) * env.astype(np.float32) * np.sin(_TWO_PI * np.float32(f) * t
                                                               + np.float32(rng.uniform(0, 6.3)))
    return out


def _noise(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)


def _lowpass(fc, order=4):
    return lambda f: 1.0 / np.sqrt(1.0 + (f / fc) ** order)


def _highpass(fc, order=4):
    return lambda f: 1.0 / np.sqrt(1.0 + (fc / np.maximum(f, 1.0)) ** order)


def _decay_len(tau, sr, n, db=20.0):
    """Samples for an exponential decay of time constant ``tau`` to fall ``db``."""
    return int(min(n, max(16, tau * sr * db / 8.686)))


# ---------------------------------------------------------------------------
# tones and glides

def _harmonic_tone(rng, n, sr):
    """A held harmonic note with vibrato: flute-, horn- or hum-like by its tilt."""
    f0 = _logu(rng, 80.0, 1500.0)
    t = np.arange(n) / sr
    vib = rng.uniform(0.0, 0.02) * np.sin(2 * np.pi * rng.uniform(3.5, 7.5) * t + rng.uniform(0, 6.3))
    freq = f0 * (1 + vib) * (1 + 0.004 * _smooth_random(rng, n, sr, 1.0))
    k = np.arange(1, _n_harmonics(f0 * 1.05, sr, cap=40) + 1)
    amps = k ** -rng.uniform(0.5, 2.5) * rng.lognormal(0, 0.4, len(k))
    return _tone(rng, freq, sr, amps) * _ar_env(n, sr, rng.uniform(0.01, 0.3), rng.uniform(0.05, 0.5))


def _glide_tone(rng, n, sr):
    """A tone whose pitch glides through 2-5 turning points (slide whistle, sighs)."""
    dur = n / sr
    k = int(rng.integers(2, 6))
    times = np.sort(np.concatenate([[0.0, dur], rng.uniform(0, dur, k - 2)]))
    logf = rng.uniform(np.log(150.0), np.log(min(2500.0, 0.3 * sr)), k)
    freq = np.exp(_curve(times, logf, n, sr))
    h = np.arange(1, _n_harmonics(freq.max(), sr, cap=int(rng.integers(1, 7))) + 1)
    return _tone(rng, freq, sr, h ** -rng.uniform(1.0, 3.0)) * _ar_env(n, sr, 0.02, 0.08)


def _chirp_sweep(rng, n, sr):
    """Exponential sine sweeps, up or down, repeated (sonar, lasers, test signals)."""
    dur = n / sr
    period = _logu(rng, 0.08, 1.0)
    m = _count(dur, period, 100)
    period = dur / m
    sweep = period * rng.uniform(0.4, 1.0)
    fa, fb = _logu(rng, 200.0, 0.42 * sr, 2)
    t = np.arange(n) / sr
    ph = (t % period) / sweep
    freq = fa * (fb / fa) ** np.clip(ph, 0.0, 1.0)
    gate = _smooth_gate(ph < 1.0, sr, 0.002) if sweep < 0.95 * period else 1.0
    h = np.arange(1, _n_harmonics(max(fa, fb), sr, cap=int(rng.integers(1, 4))) + 1)
    return _tone(rng, freq, sr, h ** -2.0) * gate


def _bird_trill(rng, n, sr):
    """Fast repeated whistled notes (8-30 a second), each a small pitch flick,
    in phrases separated by pauses."""
    dur = n / sr
    fc = _logu(rng, 1800.0, min(7000.0, 0.42 * sr))
    rate = rng.uniform(8.0, 30.0)
    depth = rng.uniform(0.05, 0.35) * rng.choice([-1.0, 1.0])
    duty = rng.uniform(0.4, 0.9)
    t = np.arange(n) / sr
    ph = (t * rate) % 1.0
    shape = np.clip(ph / duty, 0.0, 1.0)
    freq = fc * (1 + depth * (shape - 0.5)) * (1 + 0.05 * _smooth_random(rng, n, sr, 1.0))
    gate = _smooth_gate(ph < duty, sr, 0.002)
    count = _count(dur, 1.2, 6)
    phrases = np.zeros(n, dtype=np.float32)
    for s, length in _layout(rng, n, sr, rng.uniform(0.4, 1.5, count), rng.uniform(0.1, 0.6, count - 1)):
        phrases[s:s + length] = _ar_env(length, sr, 0.02, 0.05)
    x = _sine(freq, sr, rng) + rng.uniform(0.0, 0.3) * _sine(2 * freq, sr, rng) * (2 * fc < 0.45 * sr)
    return x * gate * phrases


def _bird_song(rng, n, sr):
    """A song of 3-14 whistled notes, each with its own pitch and contour."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.15, 0.4)), 2, 14))
    f_lo, f_hi = 1500.0, min(6500.0, 0.4 * sr)
    freq = np.full(n, f_lo)
    gate = np.zeros(n, dtype=np.float32)
    for s, length in _layout(rng, n, sr, rng.uniform(0.05, 0.3, count), rng.uniform(0.02, 0.2, count - 1)):
        tt = np.linspace(0.0, 1.0, length)
        f0 = _logu(rng, f_lo, f_hi)
        c = rng.uniform(-0.4, 0.4, 2)
        freq[s:s + length] = np.clip(f0 * np.exp(c[0] * tt + c[1] * tt * tt), f_lo * 0.6, 0.45 * sr)
        gate[s:s + length] = _ar_env(length, sr, 0.005, 0.02 * rng.uniform(0.5, 3.0))
    return _sine(freq, sr, rng) * gate


def _whistle(rng, n, sr):
    """A near-pure whistle (human, kettle, referee) with breath noise; held notes
    joined by portamento."""
    dur = n / sr
    k = int(rng.integers(1, 5))
    times = np.sort(np.concatenate([[0.0, dur], rng.uniform(0, dur, k - 1)]))
    f = np.repeat(_logu(rng, 500.0, min(3200.0, 0.4 * sr), k), 2)
    hold = np.repeat(times[:-1], 2) + np.tile([0.0, 1.0], k) * np.repeat(np.diff(times), 2) * 0.85
    freq = np.exp(_curve(hold, np.log(f), n, sr))
    freq *= 1 + rng.uniform(0.0, 0.015) * np.sin(2 * np.pi * rng.uniform(4, 7) * np.arange(n) / sr)
    fc = float(np.median(f))
    breath = _shaped_noise(rng, n, sr, lambda fr: _log_bump(fr, fc, 0.5) + 0.02)
    x = _sine(freq, sr, rng) + rng.uniform(0.02, 0.2) * _unit_rms(breath)
    return x * _ar_env(n, sr, rng.uniform(0.02, 0.15), rng.uniform(0.05, 0.2))


def _buzz(rng, n, sr):
    """A square / pulse wave buzz (buzzers, electric fences, insects' drones)."""
    f0 = _logu(rng, 50.0, 450.0)
    duty = rng.uniform(0.1, 0.5)
    k = np.arange(1, _n_harmonics(f0, sr, cap=120) + 1)
    amps = np.abs(np.sin(np.pi * k * duty)) / k + 1e-3
    freq = np.full(n, f0) * (1 + 0.002 * _smooth_random(rng, n, sr, 2.0))
    x = _tone(rng, freq, sr, amps)
    if rng.random() < 0.4:  # on/off in long stretches
        x *= _periodic_gate(n, sr, rng.uniform(0.4, 1.5), rng.uniform(0.25, 0.35) * 1.5, 0.005)
    return x * _ar_env(n, sr, 0.01, 0.03)


def _synth_saw(rng, n, sr):
    """A sequence of sawtooth synthesiser notes through a low-pass filter whose
    cut-off falls over each note."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.2, 0.8)), 1, 12))
    root = _logu(rng, 70.0, 500.0)
    scale = np.array([0, 2, 3, 5, 7, 8, 10, 12, 14, 15])
    out = np.zeros(n, dtype=np.float32)
    brightness = _logu(rng, 600.0, 5000.0)
    for s, length in _layout(rng, n, sr, np.ones(count), rng.uniform(0.0, 0.3, count - 1)):
        f0 = root * 2 ** (scale[rng.integers(len(scale))] / 12)
        k = np.arange(1, _n_harmonics(f0, sr, cap=60) + 1)
        bright = _tone(rng, np.full(length, f0), sr, 1.0 / k / np.sqrt(1 + (k * f0 / brightness) ** 4))
        dark = _tone(rng, np.full(length, f0), sr, 1.0 / k / np.sqrt(1 + (k * f0 / (0.3 * brightness)) ** 4))
        w = np.exp(-np.arange(length, dtype=np.float32) / np.float32(rng.uniform(0.05, 0.4) * sr))
        out[s:s + length] = (w * bright + (1 - w) * dark) * _ar_env(length, sr, 0.005, 0.03)
    return out


def _fm_tone(rng, n, sr):
    """FM synthesis notes: a carrier phase-modulated by a modulator at a ratio
    (harmonic or inharmonic), the index decaying over the note (e-pianos, bells,
    brass)."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.3, 1.2)), 1, 8))
    ratio = rng.choice([0.5, 1.0, 2.0, 3.0, 1.4, 3.5, rng.uniform(1.0, 4.0)])
    i0, tau_i = rng.uniform(1.0, 8.0), rng.uniform(0.05, 1.0)
    out = np.zeros(n, dtype=np.float32)
    for s, length in _layout(rng, n, sr, np.ones(count), rng.uniform(0.0, 0.2, count - 1)):
        fc = _logu(rng, 150.0, 1800.0)
        fm = fc * ratio
        index = i0 * np.exp(-np.arange(length, dtype=np.float32) / np.float32(tau_i * sr)) + 0.3
        mod = np.sin(_TWO_PI * _cycles(np.full(length, fm), sr, rng))
        car = np.sin(_TWO_PI * _cycles(np.full(length, fc), sr, rng) + index * mod)
        out[s:s + length] = car * _ar_env(length, sr, 0.005, length / sr * rng.uniform(0.2, 0.9))
    return out


def _tremolo_tone(rng, n, sr):
    """A harmonic tone with deep, fast amplitude modulation (tremolo, warbles)."""
    f0 = _logu(rng, 100.0, 1200.0)
    k = np.arange(1, _n_harmonics(f0, sr, cap=20) + 1)
    x = _tone(rng, np.full(n, f0), sr, k ** -rng.uniform(0.8, 2.0))
    rate, depth = rng.uniform(3.0, 15.0), rng.uniform(0.6, 1.0)
    lfo = 0.5 + 0.5 * np.sin(_TWO_PI * np.float32(rate) * _time(n, sr) + np.float32(rng.uniform(0, 6.3)))
    if rng.random() < 0.4:
        lfo = _smooth_gate(lfo > 0.5, sr, 0.004)
    return x * (1 - depth * lfo) * _ar_env(n, sr, 0.02, 0.08)


def _organ_chord(rng, n, sr):
    """Held chords of 3-4 organ notes (additive drawbar harmonics), 1-4 chords."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.8, 2.5)), 1, 5))
    draw = rng.uniform(0.0, 1.0, 8) * np.array([1, 1, 0.8, 0.6, 0.4, 0.4, 0.3, 0.3])
    draw[0] = 1.0
    harmonic = np.array([1, 2, 3, 4, 6, 8, 10, 12])
    chords = [(0, 4, 7), (0, 3, 7), (0, 4, 7, 12), (0, 3, 7, 10), (0, 5, 7), (0, 4, 7, 11)]
    out = np.zeros(n, dtype=np.float32)
    fade = int(0.03 * sr)
    for s, length in _layout(rng, n, sr, np.ones(count), np.zeros(count - 1)):
        root = _logu(rng, 90.0, 450.0)
        seg = np.zeros(length, dtype=np.float32)
        for step in chords[rng.integers(len(chords))]:
            f0 = root * 2 ** (step / 12)
            amps = np.zeros(12)
            ok = harmonic * f0 < 0.45 * sr
            amps[harmonic[ok] - 1] = draw[ok]
            seg += _tone(rng, np.full(length, f0), sr, amps)
        end = min(n, s + length + fade)
        out[s:end] += np.pad(seg, (0, end - s - length)) * _ar_env(end - s, sr, 0.02, 0.03)
    return out


def _siren(rng, n, sr):
    """Emergency sirens: slow wail, fast yelp, or a two-tone hi-lo."""
    dur = n / sr
    t = np.arange(n) / sr
    f_lo = _logu(rng, 350.0, 900.0)
    f_hi = f_lo * rng.uniform(1.4, 2.4)
    kind = rng.integers(3)
    if kind == 2:  # hi-lo
        half = rng.uniform(0.3, 0.9)
        hi = ((t / half + rng.random()) % 2.0) < 1.0
        freq = _curve(t[::64], np.where(hi[::64], f_hi, f_lo), n, sr)
    else:
        period = rng.uniform(2.0, 7.0) if kind == 0 else rng.uniform(0.15, 0.45)
        ph = t / period + rng.random()
        lfo = 0.5 - 0.5 * np.cos(2 * np.pi * ph)
        freq = f_lo * (f_hi / f_lo) ** lfo
    k = np.arange(1, _n_harmonics(f_hi, sr, cap=10) + 1)
    x = _tone(rng, freq, sr, k ** -rng.uniform(0.7, 2.0))
    return x * _ar_env(n, sr, min(0.3, 0.1 * dur), 0.2)


def _dtmf(rng, n, sr):
    """Telephone keypad digits: pairs of one low and one high sine, 50-200 ms each."""
    dur = n / sr
    rows, cols = np.array([697.0, 770.0, 852.0, 941.0]), np.array([1209.0, 1336.0, 1477.0, 1633.0])
    on, off = rng.uniform(0.05, 0.2), rng.uniform(0.04, 0.2)
    count = int(np.clip(round(dur / (on + off)), 1, 40))
    low, high = np.full(n, rows[0]), np.full(n, cols[0])
    gate = np.zeros(n, dtype=np.float32)
    for s, length in _layout(rng, n, sr, on * rng.uniform(0.8, 1.2, count), off * rng.uniform(0.5, 2.0, count - 1)):
        low[s:s + length] = rows[rng.integers(4)]
        high[s:s + length] = cols[rng.integers(4)]
        gate[s:s + length] = 1.0
    twist = np.float32(10 ** (rng.uniform(-4, 2) / 20))
    x = _sine(low * rng.uniform(0.99, 1.01), sr, rng) + twist * _sine(high * rng.uniform(0.99, 1.01), sr, rng)
    return x * _smooth_gate(gate, sr, 0.002)


def _ringtone(rng, n, sr):
    """A phone ringing: two close tones (beating) or a warbled pair, in a cadence
    of rings and pauses."""
    dur = n / sr
    f1 = _logu(rng, 300.0, 1100.0)
    f2 = f1 + rng.uniform(20.0, 60.0) if rng.random() < 0.5 else f1 * rng.uniform(1.1, 1.5)
    t = np.arange(n) / sr
    x = _sine(np.full(n, f1), sr, rng) + _sine(np.full(n, f2), sr, rng)
    if rng.random() < 0.4:  # warble between the two at 15-25 Hz
        sel = _smooth_gate(((t * rng.uniform(15, 25)) % 1.0) < 0.5, sr, 0.002)
        x = sel * _sine(np.full(n, f1), sr, rng) + (1 - sel) * _sine(np.full(n, f2), sr, rng)
    on, off = rng.uniform(0.3, 2.0), rng.uniform(0.2, 3.0)
    if rng.random() < 0.35:  # double ring (ring-ring ... ring-ring)
        on, off = 0.4, 0.2
        cad = (t % 3.0 < 0.4) | ((t % 3.0 >= 0.6) & (t % 3.0 < 1.0))
    else:
        cad = (t % (on + off)) < on
    if dur < on + off:
        cad = np.ones(n, bool)
    return x * _smooth_gate(cad, sr, 0.005)


def _beeps(rng, n, sr):
    """Pure-sine beeps at a steady rate (reversing trucks, microwaves, timers),
    single or in pairs."""
    dur = n / sr
    f = _logu(rng, 900.0, min(4500.0, 0.4 * sr))
    on = rng.uniform(0.05, 0.5)
    period = on * rng.uniform(1.5, 4.0)
    m = _count(dur - on, period, 200) if dur > on else 0
    t = np.arange(n) / sr
    if m > 0:
        period = (dur - on) / m
        ph = t % period
        gate = ph < on
        if rng.random() < 0.3 and period > 3 * on:  # beep-beep
            gate |= (ph >= 1.5 * on) & (ph < 2.5 * on)
    else:
        gate = np.ones(n, bool)
    return _sine(np.full(n, f), sr, rng) * _smooth_gate(gate, sr, 0.002)


# ---------------------------------------------------------------------------
# voices and animals

def _babble(rng, n, sr):
    """Several people talking at once (restaurant, crowd): 2-3 speech-like voices,
    plus 0-2 more made by circularly shifting them (cheap: a voice is the
    costliest model here, and shifted voices are heard as other sentences)."""
    x = np.zeros(n, dtype=np.float32)
    for _ in range(int(rng.integers(2, 4))):
        v = _unit_rms(_speech(rng, n, sr).astype(np.float32))
        x += np.float32(rng.uniform(0.4, 1.0)) * v
        if rng.random() < 0.5:
            x += np.float32(rng.uniform(0.3, 0.8)) * np.roll(v, int(rng.integers(n // 4, 3 * n // 4 + 1)))
    return x


def _singing(rng, n, sr):
    """Sung vowels: held notes of a melody with vibrato, through vowel formants."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.35, 1.2)), 1, 12))
    f_voice = _logu(rng, 100.0, 650.0)
    tract = rng.uniform(0.9, 1.3)
    scale = np.array([-5, -3, 0, 2, 4, 5, 7, 9])
    out = np.zeros(n, dtype=np.float32)
    bws = np.array([80.0, 110.0, 160.0]) * rng.uniform(0.8, 1.3)
    tilt = rng.uniform(0.7, 1.4)
    for s, length in _layout(rng, n, sr, rng.uniform(0.7, 1.3, count), rng.uniform(0.0, 0.15, count - 1)):
        f0 = f_voice * 2 ** (scale[rng.integers(len(scale))] / 12)
        tt = np.arange(length) / sr
        vib = 1 + rng.uniform(0.01, 0.035) * np.sin(2 * np.pi * rng.uniform(4.8, 6.5) * tt) \
            * np.minimum(1.0, tt / 0.3)
        k = np.arange(1, _n_harmonics(f0 * 1.05, sr, cap=50) + 1)
        src = _tone(rng, f0 * vib, sr, k ** -tilt)
        fmt = _VOWELS[rng.integers(len(_VOWELS))] * tract
        keep = fmt < 0.45 * sr
        y = _sosfilt(_resonators(fmt[keep], bws[keep], sr), src)
        out[s:s + length] = y * _ar_env(length, sr, rng.uniform(0.03, 0.1), rng.uniform(0.05, 0.15))
    return out


def _insect(rng, n, sr):
    """Crickets (a high carrier pulsed in chirps of 3-8 pulses) or cicadas (a
    high noise band buzzing at 80-250 Hz, swelling slowly)."""
    t = np.arange(n) / sr
    if rng.random() < 0.55:
        fc = _logu(rng, 2800.0, min(6500.0, 0.4 * sr))
        pulse_rate = rng.uniform(20.0, 60.0)
        pulses = int(rng.integers(3, 9))
        chirp_period = rng.uniform(0.25, 1.0)
        chirp_len = pulses / pulse_rate
        chirp_period = max(chirp_period, chirp_len * 1.3)
        gate = (((t * pulse_rate) % 1.0) < 0.6) & ((t % chirp_period) < chirp_len)
        return _sine(np.full(n, fc), sr, rng) * _smooth_gate(gate, sr, 0.002)
    fc = _logu(rng, 3000.0, min(7000.0, 0.42 * sr))
    band = _shaped_noise(rng, n, sr, lambda f: _log_bump(f, fc, rng.uniform(0.15, 0.4)))
    am = 0.5 + 0.5 * np.sin(_TWO_PI * np.float32(rng.uniform(80.0, 250.0)) * _time(n, sr))
    swell = np.maximum(1 + 0.4 * _smooth_random(rng, n, sr, rng.uniform(0.2, 1.0)), 0.2)
    return band * am * swell.astype(np.float32)


def _frog(rng, n, sr):
    """Croaks: buzzy glottal pulse trains at 40-150 Hz through two formants,
    fluttering, repeated 1-5 times a second."""
    dur = n / sr
    f0 = _logu(rng, 40.0, 150.0)
    k = np.arange(1, _n_harmonics(f0, sr, cap=80) + 1)
    src = _tone(rng, np.full(n, f0) * (1 + 0.02 * _smooth_random(rng, n, sr, 3.0)), sr, k ** -0.3)
    fm = np.array([_logu(rng, 250.0, 700.0), _logu(rng, 900.0, 2200.0)])
    y = _sosfilt(_resonators(fm, rng.uniform(80.0, 250.0, 2), sr), src)
    croak = rng.uniform(0.1, 0.45)
    count = _count(dur, croak * rng.uniform(1.5, 4.0), 30)
    gate = np.zeros(n, dtype=np.float32)
    for s, length in _layout(rng, n, sr, croak * rng.uniform(0.8, 1.2, count), rng.uniform(0.1, 0.6, count - 1)):
        gate[s:s + length] = _ar_env(length, sr, 0.01, 0.03)
    flutter = 1 - rng.uniform(0.2, 0.7) * (0.5 + 0.5 * np.sin(_TWO_PI * np.float32(rng.uniform(10, 30))
                                                             * _time(n, sr)))
    return y * gate * flutter


# ---------------------------------------------------------------------------
# noises

def _noise_burst(rng, n, sr):
    """1-6 short bursts of coloured noise with sharp attacks (puffs, sprays, hits)."""
    dur = n / sr
    beta = rng.uniform(0.0, 2.0)
    fc = _logu(rng, 1500.0, 0.5 * sr)
    x = _shaped_noise(rng, n, sr, lambda f: (np.maximum(f, 50.0) / 1000) ** (-beta / 2) * _lowpass(fc)(f))
    count = int(np.clip(round(dur / rng.uniform(0.15, 0.6)), 1, 6))
    env = np.zeros(n, dtype=np.float32)
    for s, length in _layout(rng, n, sr, rng.uniform(0.02, 0.4, count), rng.uniform(0.05, 0.4, count - 1)):
        tt = np.arange(length, dtype=np.float32)
        env[s:s + length] = np.minimum(1.0, tt / (0.003 * sr)) * (
            0.1 + 0.9 * np.exp(-tt / np.float32(length * rng.uniform(0.2, 0.5))))
    return x * env


def _hiss(rng, n, sr):
    """Steady high-passed noise (steam, air leaks, tape hiss)."""
    fc = _logu(rng, 1500.0, min(6000.0, 0.38 * sr))
    x = _shaped_noise(rng, n, sr, _highpass(fc, rng.choice([2, 4, 8])))
    drift = np.maximum(1 + 0.1 * _smooth_random(rng, n, sr, 0.5), 0.3).astype(np.float32)
    return x * drift * _ar_env(n, sr, rng.uniform(0.01, 0.5), rng.uniform(0.05, 0.5))


def _rumble(rng, n, sr):
    """Deep low-passed noise that swells (thunder, distant traffic, earthquakes)."""
    fc = _logu(rng, 40.0, 250.0)
    x = _shaped_noise(rng, n, sr, lambda f: _lowpass(fc, 4)(f) + 0.003)
    swell = np.maximum(1 + rng.uniform(0.2, 0.8) * _smooth_random(rng, n, sr, rng.uniform(0.3, 2.0)), 0.1)
    return x * swell.astype(np.float32) * _ar_env(n, sr, rng.uniform(0.05, 1.0), rng.uniform(0.2, 1.5))


def _band_noise(rng, n, sr):
    """A narrow band of noise (a breathy whistle, a tuned fan, a resonant duct)."""
    fc = _logu(rng, 200.0, min(6000.0, 0.4 * sr))
    width = rng.uniform(0.05, 0.3)
    x = _shaped_noise(rng, n, sr, lambda f: _log_bump(f, fc, width))
    drift = np.maximum(1 + 0.2 * _smooth_random(rng, n, sr, 1.0), 0.3).astype(np.float32)
    return x * drift * _ar_env(n, sr, 0.05, 0.1)


def _wind(rng, n, sr):
    """Gusting wind: noise whose band drifts between low and mid, deep slow level
    changes, sometimes a whistling resonance."""
    bands = _logu(rng, 150.0, 1500.0) * np.array([0.5, 1.0, 2.0])
    width = rng.uniform(0.6, 1.2)
    xs = [_unit_rms(_shaped_noise(rng, n, sr, lambda f, c=c: _log_bump(f, c, width))) for c in bands]
    w = np.stack([np.exp(_smooth_random(rng, n, sr, rng.uniform(0.1, 0.5))) for _ in bands])
    w /= w.sum(axis=0, keepdims=True)
    x = sum(np.float32(1) * wi.astype(np.float32) * xi for wi, xi in zip(w, xs))
    if rng.random() < 0.4:
        fw = _logu(rng, 500.0, 2500.0)
        x += rng.uniform(0.1, 0.5) * _unit_rms(_shaped_noise(rng, n, sr, lambda f: _log_bump(f, fw, 0.04)))
    gust = np.exp(rng.uniform(0.3, 1.0) * _smooth_random(rng, n, sr, rng.uniform(0.1, 0.8)))
    return x * gust.astype(np.float32)


# ---------------------------------------------------------------------------
# impacts and impulse trains

def _knock(rng, n, sr):
    """Knocking on a door or table: groups of 2-5 knocks on a wooden resonance."""
    dur = n / sr
    tau = rng.uniform(0.008, 0.04)
    length = _decay_len(tau, sr, n, 30)
    k = int(rng.integers(2, 5))
    tmpl = _modes(length, sr, _logu(rng, 100.0, 900.0, k), tau * rng.uniform(0.5, 1.0, k), rng.uniform(0.3, 1.0, k), rng)
    tmpl[:int(0.001 * sr)] += rng.uniform(0.5, 2.0) * _noise(rng, int(0.001 * sr))
    gap = rng.uniform(0.1, 0.25)
    per_group = int(rng.integers(2, 6))
    iois = []
    for _ in range(max(1, int(dur / (per_group * gap + 0.8)))):
        iois += list(gap * rng.uniform(0.85, 1.15, per_group - 1)) + [rng.uniform(0.4, 1.5)]
    pos = _fit_onsets(np.array(iois[:-1]) if len(iois) > 1 else np.array([gap]), n - length)
    return _place(n, pos, rng.uniform(0.6, 1.0, len(pos)), tmpl)


def _footsteps(rng, n, sr):
    """Walking: a heel thud then a toe scuff per step, 1.4-2.4 steps a second,
    left and right feet slightly different."""
    dur = n / sr
    ioi = 1.0 / rng.uniform(1.4, 2.4)
    count = _count(dur, ioi, 30)
    length = int(0.18 * sr)
    pos = _fit_onsets(ioi * rng.uniform(0.93, 1.07, count), n - length)
    c = len(pos)
    f_thud, f_scuff = _logu(rng, 80.0, 400.0), _logu(rng, 1000.0, min(5000.0, 0.4 * sr))
    thud = _sosfilt(_resonators([f_thud], [f_thud * 0.8], sr, bandpass=True), _noise(rng, (c, length)))
    scuff = _sosfilt(_resonators([f_scuff], [f_scuff * 0.6], sr, bandpass=True), _noise(rng, (c, length)))
    tt = np.arange(length, dtype=np.float32) / sr
    delay = rng.uniform(0.03, 0.08)
    e_thud = np.exp(-tt / np.float32(rng.uniform(0.015, 0.04)))
    e_scuff = np.where(tt >= delay, np.exp(-(tt - delay) / np.float32(rng.uniform(0.01, 0.04))), 0.0)
    mix = rng.uniform(0.2, 0.8)
    hits = _unit_rms(thud) * e_thud + mix * _unit_rms(scuff) * e_scuff.astype(np.float32)
    foot = np.where(np.arange(c) % 2 == 0, 1.0, rng.uniform(0.6, 1.0))
    return _scatter(n, pos, hits * (foot * rng.uniform(0.7, 1.0, c))[:, None].astype(np.float32))


def _clock_tick(rng, n, sr):
    """A clock: exactly regular tiny high clicks, tick and tock of two pitches."""
    rate = rng.uniform(1.0, 5.0)
    t_len = int(0.03 * sr)
    ticks = []
    for _ in range(2):
        k = 3
        ticks.append(_modes(t_len, sr, _logu(rng, 1500.0, min(6000.0, 0.42 * sr), k),
                            rng.uniform(0.001, 0.005, k), rng.uniform(0.3, 1.0, k), rng))
    pos = np.arange(0, max(1, n - t_len), int(sr / rate))
    out = np.zeros(n, dtype=np.float32)
    for j in range(2):
        p = pos[j::2]
        if len(p):
            out += _place(n, p, np.ones(len(p)), ticks[j])
    return out


def _rattle(rng, n, sr):
    """Shaken rattles, ratchets, maracas: dense irregular clicks of a small hard
    resonator, their rate pulsing with the shaking."""
    dur = n / sr
    rate = _logu(rng, 15.0, 120.0)
    shake = rng.uniform(2.0, 7.0)
    count = int(min(rng.poisson(rate * dur) + 2, 2000))
    pos = rng.integers(0, n, count)
    phase = (pos / sr * shake) % 1.0
    keep = rng.random(count) < 0.25 + 0.75 * (phase < 0.5)
    pos = pos[keep]
    tau = rng.uniform(0.002, 0.012)
    length = _decay_len(tau, sr, n, 30)
    k = 3
    tmpl = _modes(length, sr, _logu(rng, 500.0, min(5000.0, 0.42 * sr), k), tau * rng.uniform(0.5, 1, k),
                  rng.uniform(0.3, 1.0, k), rng)
    amps = np.minimum(rng.pareto(2.5, len(pos)) + 0.3, 5.0)
    x = _place(n, pos, amps, tmpl)
    x += _place(n, np.array([0, max(0, n - length)]), np.array([1.0, 1.0]), tmpl)  # sounds to its end
    return x


def _hammering(rng, n, sr):
    """Hammer on metal or a nail: regular hits, a thud and bright inharmonic rings."""
    dur = n / sr
    ioi = 1.0 / rng.uniform(1.0, 5.0)
    tau = rng.uniform(0.02, 0.15)
    tail = _decay_len(tau, sr, n)
    pos = _fit_onsets(ioi * rng.uniform(0.9, 1.1, _count(dur, ioi, 50)), n - tail)
    strikes = _impulses(n, pos, rng.uniform(0.6, 1.0, len(pos)))
    k = int(rng.integers(3, 7))
    freqs = np.concatenate([[_logu(rng, 100.0, 300.0)], _logu(rng, 1500.0, min(7000.0, 0.42 * sr), k)])
    taus = np.concatenate([[0.02], tau * rng.uniform(0.3, 1.0, k)])
    return _struck(n, sr, strikes, freqs, taus, np.concatenate([[rng.uniform(0.5, 1.5)], rng.uniform(0.2, 1.0, k)]), rng)


def _typing(rng, n, sr):
    """Keyboard typing: bursts of irregular key clicks, a few key sounds."""
    dur = n / sr
    mean = rng.uniform(0.08, 0.25)
    count = _count(dur, mean, 120)
    iois = mean * rng.lognormal(0.0, 0.4, count)
    iois[rng.random(count) < 0.08] += rng.uniform(0.3, 0.8)  # pauses between words
    length = int(0.03 * sr)
    pos = _fit_onsets(iois, n - length)
    out = np.zeros(n, dtype=np.float32)
    which = rng.integers(3, size=len(pos))
    which[-1] = 0
    for j in range(3):
        tmpl = _modes(length, sr, np.concatenate([[_logu(rng, 200.0, 800.0)], _logu(rng, 2000.0, min(6500.0, 0.42 * sr), 2)]),
                      rng.uniform(0.002, 0.01, 3), rng.uniform(0.3, 1.0, 3), rng)
        tmpl[:int(0.002 * sr)] += 0.3 * _noise(rng, int(0.002 * sr))
        p = pos[which == j]
        if len(p):
            out += _place(n, p, rng.uniform(0.5, 1.0, len(p)), tmpl)
    return out


def _heartbeat(rng, n, sr):
    """Heartbeats: a low 'lub' and a softer 'dub', 0.8-2.2 times a second."""
    dur = n / sr
    ioi = 1.0 / rng.uniform(0.8, 2.2)
    length = int(0.12 * sr)
    gap = rng.uniform(0.2, 0.35) * min(1.0, ioi / 0.6)
    pos = _fit_onsets(ioi * rng.uniform(0.97, 1.03, _count(dur, ioi, 30)), n - length - int(gap * sr))
    lub = _modes(length, sr, _logu(rng, 30.0, 90.0, 2), rng.uniform(0.02, 0.05, 2), [1.0, 0.5], rng)
    dub = _modes(length, sr, _logu(rng, 50.0, 140.0, 2), rng.uniform(0.015, 0.04, 2), [1.0, 0.5], rng)
    return _place(n, pos, np.ones(len(pos)), lub) + \
        _place(n, pos + int(gap * sr), np.full(len(pos), rng.uniform(0.4, 0.8)), dub)


def _applause(rng, n, sr):
    """Applause: many hands, dense random claps (noise bursts of a few band colours)."""
    dur = n / sr
    rate = _logu(rng, 20.0, 250.0)
    count = int(min(rng.poisson(rate * dur) + 2, 2500))
    length = int(0.015 * sr)
    pos = np.sort(rng.integers(0, max(1, n - length), count))
    pos[0], pos[-1] = 0, max(0, n - length)
    hits = _noise(rng, (count, length)) * np.exp(-np.arange(length, dtype=np.float32) / np.float32(0.004 * sr))
    group = rng.integers(4, size=count)
    for g in range(4):
        fc = _logu(rng, 700.0, 3000.0)
        sel = group == g
        if sel.any():
            hits[sel] = _sosfilt(_resonators([fc], [fc * rng.uniform(0.5, 1.2)], sr, bandpass=True), hits[sel])
    hits *= np.float32(rng.uniform(0.3, 1.0, count))[:, None]
    swell = np.maximum(1 + 0.3 * _smooth_random(rng, n, sr, 0.5), 0.2).astype(np.float32)
    return _scatter(n, pos, hits) * swell


def _sawing(rng, n, sr):
    """Sawing wood: back-and-forth strokes of rasping noise, the teeth rate
    following the stroke speed."""
    t = _time(n, sr)
    stroke = rng.uniform(0.35, 1.2)
    speed = np.abs(np.sin(np.pi * t / np.float32(stroke) + np.float32(0.5 * np.pi * rng.random())))
    teeth = _cycles(rng.uniform(150.0, 600.0) * (0.2 + speed.astype(np.float64)), sr, rng)
    fc = _logu(rng, 1200.0, min(5000.0, 0.4 * sr))
    band = _shaped_noise(rng, n, sr, lambda f: _log_bump(f, fc, rng.uniform(0.5, 1.2)) + 0.03)
    rasp = 1 + rng.uniform(0.5, 1.0) * np.cos(_TWO_PI * teeth)
    return band * rasp * (0.1 + speed)


def _creak(rng, n, sr):
    """A creaking door or floorboard: stick-slip pulses at a slowly wandering
    rate (15-150 Hz) ringing a wooden body."""
    f0 = _logu(rng, 15.0, 150.0)
    freq = f0 * np.exp(0.5 * _smooth_random(rng, n, sr, rng.uniform(0.5, 3.0)))
    k = np.arange(1, _n_harmonics(freq.max(), sr, cap=200) + 1)
    pulses = _tone(rng, freq, sr, k ** -0.1)
    fm = _logu(rng, 300.0, min(3000.0, 0.4 * sr), 3)
    y = _sosfilt(_resonators(fm, rng.uniform(40.0, 200.0, 3), sr, bandpass=True), pulses)
    am = np.maximum(1 + 0.5 * _smooth_random(rng, n, sr, 4.0), 0.1).astype(np.float32)
    return y * am * _ar_env(n, sr, 0.05, 0.1)


# ---------------------------------------------------------------------------
# resonators: bells, chimes, strings, drums

def _bell(rng, n, sr):
    """Struck bells (church, hand, ship): inharmonic partials with beating pairs,
    high partials dying first; 1-4 strikes, the last ringing to the end."""
    dur = n / sr
    f_nom = _logu(rng, 180.0, 1400.0)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.67, 3.0, 4.0])
    pick = np.sort(rng.choice(len(ratios), int(rng.integers(4, 8)), replace=False))
    r = ratios[pick] * rng.uniform(0.98, 1.02, len(pick))
    freqs = np.concatenate([f_nom * r, f_nom * r[:2] + rng.uniform(0.5, 3.0, 2)])  # beating
    tau0 = min(_logu(rng, 0.4, 3.0), dur / 2.3)
    taus = np.concatenate([tau0 * r ** -0.7, tau0 * r[:2] ** -0.7])
    amps = np.concatenate([rng.uniform(0.3, 1.0, len(r)), rng.uniform(0.2, 0.6, 2)])
    strikes_n = int(rng.integers(1, 5))
    tail = int(2.3 * tau0 * sr)
    pos = _fit_onsets(rng.uniform(0.5, 1.5, strikes_n - 1), max(0, n - tail)) if strikes_n > 1 \
        else np.zeros(1, np.int64)
    return _struck(n, sr, _impulses(n, pos, rng.uniform(0.7, 1.0, len(pos))), freqs, taus, amps, rng)


def _wind_chimes(rng, n, sr):
    """Wind chimes: 3-7 tuned tubes (free-bar modes 1 : 2.76 : 5.40), struck at
    random as the wind moves them."""
    dur = n / sr
    tubes = int(rng.integers(3, 8))
    base = _logu(rng, 500.0, 2500.0)
    fund = base * 2 ** (rng.choice([0, 2, 3, 5, 7, 9, 10, 12], tubes, replace=False) / 12)
    rate = rng.uniform(2.0, 12.0)
    tau = rng.uniform(0.2, 1.0)
    count = int(min(rng.poisson(rate * dur) + 2, 150))
    pos = np.sort(rng.integers(0, max(1, n - int(1.5 * tau * sr)), count))
    pos[0] = 0
    which = rng.integers(tubes, size=count)
    out = np.zeros(n, dtype=np.float32)
    for j in range(tubes):
        sel = which == j
        if sel.any():
            strikes = _impulses(n, pos[sel], rng.uniform(0.3, 1.0, sel.sum()))
            out += _struck(n, sr, strikes, fund[j] * np.array([1.0, 2.76, 5.40]),
                           tau * np.array([1.0, 0.5, 0.25]), [1.0, 0.4, 0.2], rng)
    return out


def _plucked_string(rng, n, sr):
    """Plucked strings (guitar, harp, pizzicato) by Karplus-Strong, computed in
    the frequency domain: the string loop 1 / (1 - g (1 + z^-1) / 2 z^-P) is
    applied to the pluck's spectrum in one FFT per note (P may be fractional)."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.25, 1.0)), 1, 10))
    root = _logu(rng, 80.0, 500.0)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    bright = rng.uniform(0.2, 0.95)
    out = np.zeros(n, dtype=np.float32)
    starts = _fit_onsets(rng.uniform(0.7, 1.3, count - 1), int(n * (1 - 1 / (count + 1)))) if count > 1 \
        else np.zeros(1, np.int64)
    for i, s in enumerate(starts):
        length = n - s if i == len(starts) - 1 else int(min(n - s, (starts[i + 1] - s) * rng.uniform(1.0, 2.5)))
        f0 = root * 2 ** (scale[rng.integers(len(scale))] / 12)
        period = sr / f0 - 0.5  # the two-point average delays by half a sample
        decay_db = rng.uniform(20.0, 45.0)
        g = 10 ** (-decay_db / 20 / (length / (period + 0.5)))
        m = max(2, int(round(period)))
        exc = _noise(rng, m)
        exc = signal.lfilter([1 - bright], [1, -bright], exc).astype(np.float32)  # soft plucks are darker
        beta = int(round(rng.uniform(0.1, 0.5) * m))
        exc[beta:] -= exc[:m - beta]  # pluck position: a comb on the excitation
        n_fft = scipy.fft.next_fast_len(2 * length, real=True)
        w = 2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft
        loop = g * 0.5 * (1 + np.exp(-1j * w)) * np.exp(-1j * w * period)
        spec = scipy.fft.rfft(exc, n_fft) / (1 - loop)
        out[s:s + length] += scipy.fft.irfft(spec, n_fft)[:length].astype(np.float32)
    return out


def _drum(rng, n, sr):
    """Toms and kick drums: a sine whose pitch drops fast after the hit, plus a
    noise click; 1-2 drums playing a beat at 60-180 BPM."""
    dur = n / sr
    beat = 60.0 / rng.uniform(60.0, 180.0) * rng.choice([0.5, 1.0, 2.0])
    out = np.zeros(n, dtype=np.float32)
    drums = int(rng.integers(1, 3))
    for d in range(drums):
        f1 = _logu(rng, 40.0, 250.0)
        f0 = f1 * rng.uniform(1.5, 3.0)
        tau_a = rng.uniform(0.05, 0.3)
        length = _decay_len(tau_a, sr, n)
        tt = np.arange(length) / sr
        tau_p = rng.uniform(0.01, 0.05)
        freq = f1 + (f0 - f1) * np.exp(-tt / tau_p)
        body = np.sin(2 * np.pi * np.cumsum(freq) / sr).astype(np.float32) * np.exp(-tt / tau_a).astype(np.float32)
        click = int(0.005 * sr)
        body[:click] += rng.uniform(0.1, 0.6) * _noise(rng, click) * np.linspace(1, 0, click, dtype=np.float32)
        count = _count(dur, beat, 60)
        pos = _fit_onsets(beat * rng.uniform(0.98, 1.02, count), n - length)
        if d == 1:
            pos = pos[1::2] if len(pos) > 2 else pos
        out += _place(n, pos, rng.uniform(0.7, 1.0, len(pos)), body)
    return out


def _snare(rng, n, sr):
    """Snare drums: a short tonal body and a bright rattle of noise; beats and rolls."""
    dur = n / sr
    tau_n = rng.uniform(0.05, 0.2)
    length = _decay_len(tau_n, sr, n)
    tt = np.arange(length, dtype=np.float32) / sr
    fc = _logu(rng, 1500.0, min(6000.0, 0.4 * sr))
    noise = _sosfilt(_resonators([fc], [fc * 1.2], sr, bandpass=True), _noise(rng, length))
    tone = np.sin(_TWO_PI * np.float32(rng.uniform(150.0, 300.0)) * tt)
    tmpl = _unit_rms(noise) * np.exp(-tt / np.float32(tau_n)) + rng.uniform(0.3, 1.5) * tone * np.exp(-tt / np.float32(0.03))
    if rng.random() < 0.3:  # a roll: 10-20 strokes a second
        ioi = 1.0 / rng.uniform(10.0, 20.0)
    else:
        ioi = 60.0 / rng.uniform(70.0, 180.0) * rng.choice([0.5, 1.0, 2.0])
    count = _count(dur, ioi, 200)
    pos = _fit_onsets(ioi * rng.uniform(0.95, 1.05, count), n - length)
    return _place(n, pos, rng.uniform(0.5, 1.0, len(pos)), tmpl)


# ---------------------------------------------------------------------------
# textures

def _rain(rng, n, sr):
    """Rain: a broad wash of noise plus many drop impacts and a few plinks."""
    dur = n / sr
    fc = _logu(rng, 1500.0, 0.45 * sr)
    wash = _shaped_noise(rng, n, sr, lambda f: _lowpass(fc, 2)(f) * _highpass(200.0, 2)(f))
    rate = _logu(rng, 200.0, 3000.0)
    count = int(min(rng.poisson(rate * dur), 30000))
    imp = _impulses(n, rng.integers(0, n, count), np.minimum(rng.pareto(2.0, count), 10.0) * rng.choice([-1.0, 1.0], count))
    drops = _sosfilt(_resonators([_logu(rng, 600.0, 3000.0)], [rng.uniform(1000.0, 3000.0)], sr, bandpass=True), imp)
    k = int(min(rng.poisson(rng.uniform(3.0, 30.0) * dur), 300))
    x = rng.uniform(0.3, 0.7) * _unit_rms(wash) + _unit_rms(drops)
    if k:
        length = int(0.05 * sr)
        t = _time(length, sr)[None, :]
        f = _logu(rng, 1000.0, min(5000.0, 0.42 * sr), k).astype(np.float32)[:, None]
        tau = rng.uniform(0.004, 0.012, k).astype(np.float32)[:, None]
        plinks = np.sin(_TWO_PI * f * t) * np.exp(-t / tau) * np.float32(rng.uniform(0.5, 2.0, k))[:, None]
        x += _scatter(n, rng.integers(0, n, k), plinks)
    return x


def _fire_crackle(rng, n, sr):
    """A wood fire: a low flickering roar and sparse loud pops and snaps."""
    dur = n / sr
    fr = _logu(rng, 100.0, 600.0)
    roar = _shaped_noise(rng, n, sr, lambda f: _lowpass(fr, 2)(f))
    flicker = np.maximum(1 + 0.5 * _smooth_random(rng, n, sr, rng.uniform(2.0, 10.0)), 0.1).astype(np.float32)
    rate = _logu(rng, 3.0, 30.0)
    count = int(min(rng.poisson(rate * dur) + 1, 600))
    base = rng.integers(0, n, count)
    cluster = rng.random(count) < 0.3  # snaps come in little clusters
    pos = np.concatenate([base, (base[cluster] + rng.integers(50, 2000, cluster.sum())) % n])
    amps = np.minimum(rng.pareto(1.8, len(pos)) + 0.3, 6.0) * rng.choice([-1.0, 1.0], len(pos))
    snap = _sosfilt(_resonators([_logu(rng, 1200.0, min(4000.0, 0.4 * sr))], [rng.uniform(800, 2500)], sr,
                                bandpass=True), _impulses(n, pos, amps))
    return rng.uniform(0.3, 0.8) * _unit_rms(roar) * flicker + _unit_rms(snap)


def _bubbles(rng, n, sr):
    """Bubbling (aquarium, boiling, blowing through a straw): discrete, tonal
    bubbles whose pitch rises as they close, 3-25 a second."""
    dur = n / sr
    rate = _logu(rng, 3.0, 25.0)
    count = int(min(rng.poisson(rate * dur) + 2, 300))
    length = int(0.1 * sr)
    f_mid = _logu(rng, 250.0, 1200.0)
    f = (f_mid * rng.lognormal(0.0, 0.3, count)).astype(np.float32)[:, None]
    tau = rng.uniform(0.01, 0.03, count).astype(np.float32)[:, None]
    xi = rng.uniform(0.2, 1.0, count).astype(np.float32)[:, None]
    t = _time(length, sr)[None, :]
    hits = np.sin(_TWO_PI * f * (t + xi / (2 * tau) * t * t)) * np.exp(-t / tau)
    hits *= np.float32(rng.uniform(0.3, 1.0, count))[:, None]
    pos = np.sort(rng.integers(0, max(1, n - length // 2), count))
    pos[0] = 0
    return _scatter(n, pos, hits)


def _engine(rng, n, sr):
    """Combustion engines (cars, motorbikes, mowers): firing-rate harmonics and
    noise pulsed at the firing rate; the revs change slowly."""
    dur = n / sr
    fire = _logu(rng, 15.0, 90.0)
    k = int(rng.integers(1, 4))
    times = np.sort(np.concatenate([[0.0, dur], rng.uniform(0, dur, k - 1)]))
    revs = fire * np.exp(_curve(times, rng.uniform(-0.35, 0.35, k + 1), n, sr))
    revs *= 1 + 0.01 * _smooth_random(rng, n, sr, 4.0)
    cyc = _cycles(revs, sr, rng)
    h = np.arange(1, _n_harmonics(revs.max(), sr, cap=60) + 1)
    harm = _osc(_harmonic_table(h ** -rng.uniform(0.6, 1.5) * rng.lognormal(0, 0.5, len(h)), rng), cyc)
    fc = _logu(rng, 300.0, 2000.0)
    noise = _shaped_noise(rng, n, sr, _lowpass(fc, 2))
    pulse = (0.5 + 0.5 * np.cos(_TWO_PI * cyc)) ** np.float32(rng.uniform(1.0, 6.0))
    mix = rng.uniform(0.3, 0.8)
    return (mix * _unit_rms(harm) + (1 - mix) * _unit_rms(noise * pulse)) * _ar_env(n, sr, 0.2, 0.3)


def _motor_hum(rng, n, sr):
    """Electrical hum (transformers, fridges, fans): a very steady low harmonic
    comb at mains-related pitches, and a faint high whine."""
    f0 = rng.choice([50.0, 60.0, 100.0, 120.0]) if rng.random() < 0.5 else _logu(rng, 80.0, 400.0)
    h = np.arange(1, _n_harmonics(f0, sr, cap=30) + 1)
    amps = h ** -rng.uniform(1.0, 2.5) * rng.lognormal(0, 0.5, len(h))
    if rng.random() < 0.5:
        amps[1::2] *= 0.1  # odd harmonics (magnetostriction hums at 2x mains)
    x = _tone(rng, np.full(n, f0), sr, amps)
    fw = _logu(rng, 1000.0, min(6000.0, 0.4 * sr))
    x += rng.uniform(0.0, 0.2) * _sine(np.full(n, fw), sr, rng)
    am = 1 + rng.uniform(0.0, 0.1) * np.sin(_TWO_PI * np.float32(rng.uniform(0.2, 3.0)) * _time(n, sr))
    return x * am * _ar_env(n, sr, 0.1, 0.2)


# ---------------------------------------------------------------------------
# the class list

_FAMILY_MODELS = {
    "Applause": _applause,
    "Babble": _babble,
    "Band_noise": _band_noise,
    "Beeps": _beeps,
    "Bell": _bell,
    "Bird_song": _bird_song,
    "Bird_trill": _bird_trill,
    "Bubbles": _bubbles,
    "Buzz": _buzz,
    "Chirp_sweep": _chirp_sweep,
    "Clock_tick": _clock_tick,
    "Creak": _creak,
    "DTMF": _dtmf,
    "Drum": _drum,
    "Engine": _engine,
    "FM_tone": _fm_tone,
    "Fire_crackle": _fire_crackle,
    "Footsteps": _footsteps,
    "Frog": _frog,
    "Glide_tone": _glide_tone,
    "Hammering": _hammering,
    "Harmonic_tone": _harmonic_tone,
    "Heartbeat": _heartbeat,
    "Hiss": _hiss,
    "Insect": _insect,
    "Knock": _knock,
    "Motor_hum": _motor_hum,
    "Noise_burst": _noise_burst,
    "Organ_chord": _organ_chord,
    "Plucked_string": _plucked_string,
    "Rain": _rain,
    "Rattle": _rattle,
    "Ringtone": _ringtone,
    "Rumble": _rumble,
    "Sawing": _sawing,
    "Singing": _singing,
    "Siren": _siren,
    "Snare_drum": _snare,
    "Synth_saw": _synth_saw,
    "Tremolo_tone": _tremolo_tone,
    "Typing": _typing,
    "Whistle": _whistle,
    "Wind": _wind,
    "Wind_chimes": _wind_chimes,
}

# Class-typical lengths (seconds, drawn log-uniformly) of the non-DESED types.
FAMILY_SECONDS = {
    "Applause": (2.0, 10.0), "Babble": (2.0, 10.0), "Band_noise": (1.0, 8.0),
    "Beeps": (0.5, 5.0), "Bell": (1.0, 6.0), "Bird_song": (0.6, 4.0),
    "Bird_trill": (0.5, 4.0), "Bubbles": (1.0, 8.0), "Buzz": (0.5, 5.0),
    "Chirp_sweep": (0.3, 4.0), "Clock_tick": (2.0, 10.0), "Creak": (0.5, 3.0),
    "DTMF": (0.5, 3.0), "Drum": (1.0, 6.0), "Engine": (2.0, 10.0),
    "FM_tone": (0.3, 4.0), "Fire_crackle": (3.0, 10.0), "Footsteps": (1.5, 8.0),
    "Frog": (0.5, 4.0), "Glide_tone": (0.3, 3.0), "Hammering": (1.0, 6.0),
    "Harmonic_tone": (0.3, 4.0), "Heartbeat": (2.0, 8.0), "Hiss": (1.0, 8.0),
    "Insect": (1.0, 8.0), "Knock": (0.4, 3.0), "Motor_hum": (2.0, 10.0),
    "Noise_burst": (0.25, 2.0), "Organ_chord": (1.0, 6.0), "Plucked_string": (0.5, 5.0),
    "Rain": (3.0, 10.0), "Rattle": (0.5, 4.0), "Ringtone": (1.0, 8.0),
    "Rumble": (2.0, 10.0), "Sawing": (1.5, 8.0), "Singing": (1.0, 6.0),
    "Siren": (2.0, 10.0), "Snare_drum": (0.5, 5.0), "Synth_saw": (1.0, 6.0),
    "Tremolo_tone": (0.5, 4.0), "Typing": (1.0, 6.0), "Whistle": (0.5, 4.0),
    "Wind": (3.0, 10.0), "Wind_chimes": (2.0, 10.0),
}
assert set(FAMILY_SECONDS) == set(_FAMILY_MODELS)
assert not set(_FAMILY_MODELS) & set(DESED_CLASSES)

# Every tagging class, sorted: the ten DESED classes (under their DESED names)
# and the broad family. The label vector's order.
FAMILY_CLASSES: tuple[str, ...] = tuple(sorted(DESED_CLASSES + tuple(_FAMILY_MODELS)))
# Indices of the DESED classes in FAMILY_CLASSES, in DESED_CLASSES order.
DESED_INDICES: tuple[int, ...] = tuple(FAMILY_CLASSES.index(c) for c in DESED_CLASSES)


def _check_label(label):
    if label not in FAMILY_CLASSES:
        raise ValueError(f"unknown sound family {label!r}; known: {', '.join(FAMILY_CLASSES)}")


def draw_family_duration(label: str, rng: np.random.Generator) -> float:
    """A class-typical event length in seconds (DESED classes: their own ranges)."""
    _check_label(label)
    if label in DESED_CLASSES:
        return draw_event_duration(label, rng)
    lo, hi = FAMILY_SECONDS[label]
    return float(max(MIN_EVENT_SECONDS, _logu(rng, lo, hi)))


def synthesize_family_event(label: str, rng: np.random.Generator, sample_rate: int,
                            duration: float | None = None) -> np.ndarray:
    """One event of tagging class ``label``: float32 mono, peak-normalised to 1.

    DESED classes come from ``event_sounds.synthesize_event``. ``duration``
    (seconds) fixes the length to ``round(duration * sample_rate)`` samples;
    ``None`` draws a class-typical one. Raises ``ValueError`` for an unknown
    label or a duration under ``MIN_EVENT_SECONDS``."""
    _check_label(label)
    if label in DESED_CLASSES:
        return synthesize_event(label, rng, sample_rate, duration)
    if duration is None:
        duration = draw_family_duration(label, rng)
    n = int(round(duration * sample_rate))
    if n < int(round(MIN_EVENT_SECONDS * sample_rate)):
        raise ValueError(f"{label} event of {duration:.3f} s is shorter than the minimum "
                         f"{MIN_EVENT_SECONDS} s")
    x = _FAMILY_MODELS[label](rng, n, sample_rate)
    assert len(x) == n, (label, len(x), n)
    return _finish(x, sample_rate)


# ---------------------------------------------------------------------------
# streamed soundscapes

def _clip_streams(seed: int, index: int):
    """(specification, rendering) SeedSequences of clip ``index`` of stream ``seed``."""
    if index < 0:
        raise ValueError(f"clip index must be >= 0, got {index}")
    return np.random.SeedSequence([int(seed), STREAM_ID, int(index)]).spawn(2)


def _clip_spec(index: int, seed: int, clip_seconds: float):
    """(events, background dBFS) of a clip, from its specification stream."""
    rng = np.random.default_rng(_clip_streams(seed, index)[0])
    clip_ms = int(round(clip_seconds * 1000))
    min_ms = int(round(MIN_EVENT_SECONDS * 1000))
    if clip_ms < min_ms:
        raise ValueError(f"clip_seconds must be at least {MIN_EVENT_SECONDS}, got {clip_seconds}")
    events = []
    for _ in range(int(rng.choice(EVENT_COUNTS, p=EVENT_COUNT_P))):
        label = FAMILY_CLASSES[int(rng.integers(len(FAMILY_CLASSES)))]
        dur = draw_family_duration(label, rng)
        if rng.random() < SHORTENED_P:
            dur = _logu(rng, MIN_EVENT_SECONDS, max(dur, MIN_EVENT_SECONDS * 1.001))
        dur_ms = min(clip_ms, max(min_ms, int(round(dur * 1000))))
        onset_ms = int(rng.integers(0, clip_ms - dur_ms + 1))
        events.append((onset_ms / 1000, (onset_ms + dur_ms) / 1000, label, float(rng.uniform(*SNR_DB))))
    return events, float(rng.uniform(*BACKGROUND_DBFS))


def tagging_clip_events(index: int, seed: int, clip_seconds: float = 10.0) -> list:
    """The events of clip ``index`` (seed ``seed``) without rendering audio:
    [(onset s, offset s, class, snr dB)] in draw order (the rendering order).

    Times are whole milliseconds. 1-4 events of uniformly drawn classes (so a
    class may repeat), class-typical lengths, a quarter of them cut shorter,
    uniform onsets (overlaps allowed), SNR uniform in 6-30 dB."""
    return _clip_spec(index, seed, clip_seconds)[0]


def labels_vector(labels) -> np.ndarray:
    """Class names -> multi-hot float32 over ``FAMILY_CLASSES``."""
    y = np.zeros(len(FAMILY_CLASSES), dtype=np.float32)
    for label in labels:
        _check_label(label)
        y[FAMILY_CLASSES.index(label)] = 1.0
    return y


def render_tagging_clip(index: int, seed: int, sample_rate: int = 16000,
                        clip_seconds: float = 10.0):
    """Clip ``index`` of the streamed tagging corpus ``seed``.

    Returns ``(audio, target, events)``: float32 audio of
    ``round(clip_seconds * sample_rate)`` samples (peak <= ``PEAK_LIMIT``), the
    multi-hot float32 vector over ``FAMILY_CLASSES``, and the events as
    ``(onset s, offset s, class)``, sorted by onset.

    A random DESED-lite background (-50 to -30 dBFS RMS) carries 1-4 events,
    each mixed at its SNR (event active RMS over the background's RMS under
    it, as DESED-lite). Deterministic in ``(seed, index)`` and independent of
    call order; each event has its own child stream, so it sounds the same
    whatever else is in the clip."""
    sr = int(sample_rate)
    specs, level = _clip_spec(index, seed, clip_seconds)
    n = int(round(clip_seconds * sr))
    children = _clip_streams(seed, index)[1].spawn(1 + len(specs))
    bg = synthesize_background(np.random.default_rng(children[0]), sr, n)
    bg *= np.float32(10 ** (level / 20) / max(_rms(bg), 1e-12))
    mix = bg.copy()
    for (onset, offset, label, snr), child in zip(specs, children[1:]):
        start, stop = int(round(onset * sr)), int(round(offset * sr))
        x = synthesize_family_event(label, np.random.default_rng(child), sr, (stop - start) / sr)
        gain = 10 ** (snr / 20) * _rms(bg[start:stop]) / max(active_rms(x, sr), 1e-12)
        mix[start:stop] += x * np.float32(gain)
    peak = float(np.abs(mix).max()) if n else 0.0
    if peak > PEAK_LIMIT:
        mix *= np.float32(PEAK_LIMIT / peak)
    events = sorted(((on, off, lab) for on, off, lab, _ in specs), key=lambda e: (e[0], e[2]))
    return mix, labels_vector(lab for _, _, lab in events), events


# ---------------------------------------------------------------------------
# torch dataset

class StreamedTaggingClips(torch.utils.data.Dataset):
    """Map-style torch Dataset of streamed tagging clips, featurised on the fly.

    Item ``i`` is clip ``epoch * n_clips + i`` of stream ``seed``:
    ``{"mel": (n_mels, n_frames), "weak": (K,), "strong": (n_frames, K),
    "index": clip index}`` with ``K = len(FAMILY_CLASSES)``, the log-mel from
    ``features.LogMel(preset)`` and the strong labels at the log-mel frame
    rate (``labels.events_to_frames``). ``set_epoch(e)`` (or ``epoch=e``)
    moves to a fresh index range, so every epoch sees new clips; the same
    (seed, epoch, i) always gives the same item, whatever the worker or order.
    """

    def __init__(self, n_clips: int, seed: int = 0, preset: "Preset | str" = "cpu",
                 epoch: int = 0, strong: bool = True):
        self.n_clips, self.seed, self.epoch, self.strong = int(n_clips), int(seed), int(epoch), strong
        self.preset = get_preset(preset)
        self.logmel = LogMel(self.preset)
        self.classes = FAMILY_CLASSES

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_clips

    def clip_index(self, i: int) -> int:
        if not 0 <= i < self.n_clips:
            raise IndexError(i)
        return self.epoch * self.n_clips + int(i)

    def __getitem__(self, i: int) -> dict:
        p = self.preset
        index = self.clip_index(i)
        audio, target, events = render_tagging_clip(index, self.seed, p.sample_rate, p.clip_seconds)
        with torch.no_grad():
            mel = self.logmel(torch.from_numpy(audio))
        item = {"mel": mel, "weak": torch.from_numpy(target), "index": index}
        if self.strong:
            frames = events_to_frames(events, FAMILY_CLASSES, mel.shape[-1], p.frame_hop_seconds)
            item["strong"] = torch.from_numpy(frames)
        return item


def streamed_epochs(n_clips: int, seed: int, preset: "Preset | str", batch_size: int,
                    num_workers: int = 0, strong: bool = False):
    """``epoch -> DataLoader`` of fresh clips per epoch, the callable form that
    ``engine.fit`` accepts as ``train_data`` (clip order within an epoch is the
    index order: the clips are already i.i.d. draws)."""
    def loader(epoch: int):
        ds = StreamedTaggingClips(n_clips, seed, preset, epoch=epoch, strong=strong)
        return torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers,
                                           drop_last=True, persistent_workers=False)
    return loader
