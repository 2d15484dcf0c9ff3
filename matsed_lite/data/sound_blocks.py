"""Building blocks of the broad sound families: sines, gates, onset patterns, struck modes, filters.

Added to ``sound_synthesis``' oscillators, noises and envelopes for the
families of ``tonal_sounds``, ``noise_sounds`` and ``impulse_sounds``: a
sine or harmonic wave along a frequency curve, click-free gates, onset
patterns that fill an event exactly, copies of a template at onsets, damped
modes (one impact, or re-struck by a train of impulses) and filter gains.
Vectorised numpy; randomness only from the Generator passed in.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from .sound_synthesis import cycles, harmonic_table, osc

TWO_PI = np.float32(2 * np.pi)


def sample_times(n, sr):
    """Sample times in seconds, float32."""
    return np.arange(n, dtype=np.float32) / np.float32(sr)


def sine_wave(freq, sr, rng):
    """Sine of a frequency curve (Hz per sample), random start phase."""
    return np.sin(TWO_PI * cycles(np.asarray(freq, dtype=np.float64), sr, rng))


def harmonic_wave(rng, freq, sr, amps):
    """Harmonic tone with harmonic amplitudes ``amps`` along a frequency curve."""
    return osc(harmonic_table(amps, rng), cycles(np.asarray(freq, dtype=np.float64), sr, rng))


def smooth_gate(g, sr, edge_s=0.003):
    """A 0/1 gate with its edges softened by a one-pole filter (no clicks)."""
    a = np.exp(-1.0 / max(1.0, edge_s * sr))
    return signal.lfilter(np.float32([1 - a]), np.float32([1.0, -a]),
                          g.astype(np.float32)).astype(np.float32)


def periodic_gate(n, sr, period_s, on_s, edge_s=0.003, phase=0.0):
    """A smooth gate open ``on_s`` of every ``period_s`` seconds."""
    t = np.arange(n) / sr
    ph = (t / period_s + phase) % 1.0
    return smooth_gate(ph < on_s / period_s, sr, edge_s)


def fit_onsets(iois, span):
    """Onsets (samples) from inter-onset intervals, stretched so the first onset is
    at 0 and the last at ``span``: a pattern that fills the event exactly."""
    if span <= 0 or len(iois) == 0:
        return np.zeros(1, dtype=np.int64)
    pos = np.concatenate([[0.0], np.cumsum(iois)])
    return np.round(pos / pos[-1] * span).astype(np.int64)


def pattern_count(dur, ioi, cap):
    """How many onsets ``ioi`` apart fit in ``dur`` seconds, 1 to ``cap``."""
    return int(np.clip(round(dur / max(ioi, 1e-3)), 1, cap))


def impulse_train(n, pos, amps):
    """n samples, zero but ``amps`` at the positions ``pos`` (coinciding ones add)."""
    return np.bincount(pos, weights=amps, minlength=n)[:n].astype(np.float32)


def place_copies(n, pos, amps, template):
    """Copies of ``template`` at ``pos`` with gains ``amps`` (one FFT convolution)."""
    imp = impulse_train(n, pos, amps)
    return signal.fftconvolve(imp, template.astype(np.float32))[:n].astype(np.float32)


def scatter_rows(n, pos, hits):
    """Add rows of ``hits`` (count, L) at sample positions ``pos``, cut at n."""
    count, length = hits.shape
    idx = pos[:, None] + np.arange(length)[None, :]
    keep = idx < n
    return np.bincount(idx[keep], weights=hits[keep], minlength=n)[:n].astype(np.float32)


def damped_modes(length, sr, freqs, taus, amps, rng):
    """One impact: a sum of exponentially damped sines (length samples)."""
    t = sample_times(length, sr)[:, None]
    freqs, taus, amps = (np.asarray(v, np.float32)[None, :] for v in (freqs, taus, amps))
    ph = np.float32(rng.uniform(0, 2 * np.pi, freqs.shape[1]))[None, :]
    return (np.sin(TWO_PI * freqs * t + ph) * np.exp(-t / taus) * amps).sum(axis=1)


def struck_modes(n, sr, strikes, freqs, taus, amps, rng):
    """Modes re-excited by a strike train (impulses, length n): each mode's
    envelope is the strike train through a one-pole decay, so overlapping rings
    add as they would in a real resonator."""
    t = sample_times(n, sr)
    out = np.zeros(n, dtype=np.float32)
    for f, tau, a in zip(freqs, taus, amps):
        if f >= 0.47 * sr:
            continue
        env = signal.lfilter(np.float32([1.0]), np.float32([1.0, -np.exp(-1.0 / (tau * sr))]), strikes)
        out += np.float32(a) * env.astype(np.float32) * np.sin(TWO_PI * np.float32(f) * t
                                                               + np.float32(rng.uniform(0, 6.3)))
    return out


def white_noise(rng, shape):
    """Standard normal float32 noise."""
    return rng.standard_normal(shape, dtype=np.float32)


def lowpass_gain(fc, order=4):
    """Butterworth-like low-pass magnitude, as a function of frequency (Hz)."""
    return lambda f: 1.0 / np.sqrt(1.0 + (f / fc) ** order)


def highpass_gain(fc, order=4):
    """Butterworth-like high-pass magnitude, as a function of frequency (Hz)."""
    return lambda f: 1.0 / np.sqrt(1.0 + (fc / np.maximum(f, 1.0)) ** order)


def decay_samples(tau, sr, n, db=20.0):
    """Samples for an exponential decay of time constant ``tau`` to fall ``db``."""
    return int(min(n, max(16, tau * sr * db / 8.686)))
