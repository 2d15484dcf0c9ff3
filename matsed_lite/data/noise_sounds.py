"""Noise sound families of the broad tagging corpus: coloured and band noises, wind, rain, fire, bubbles, engines, hums.

Each ``model(rng, n, sr)`` returns n float32 samples of one event whose
spectrum, level changes and texture are drawn from ``rng``;
``tagging_corpus.synthesize_family_event`` finishes and normalises it.
"""
from __future__ import annotations

import numpy as np

from .sound_blocks import (TWO_PI, harmonic_wave, highpass_gain, impulse_train, lowpass_gain,
                           sample_times, scatter_rows, sine_wave)
from .sound_synthesis import (ar_env, burst_layout, curve, cycles, harmonic_table, log_bump, logu,
                              n_harmonics, osc, resonators, shaped_noise, smooth_random, sosfilt,
                              unit_rms)


# ---------------------------------------------------------------------------
# noises

def noise_burst(rng, n, sr):
    """1-6 short bursts of coloured noise with sharp attacks (puffs, sprays, hits)."""
    dur = n / sr
    beta = rng.uniform(0.0, 2.0)
    fc = logu(rng, 1500.0, 0.5 * sr)
    x = shaped_noise(rng, n, sr, lambda f: (np.maximum(f, 50.0) / 1000) ** (-beta / 2) * lowpass_gain(fc)(f))
    count = int(np.clip(round(dur / rng.uniform(0.15, 0.6)), 1, 6))
    env = np.zeros(n, dtype=np.float32)
    for s, length in burst_layout(rng, n, sr, rng.uniform(0.02, 0.4, count), rng.uniform(0.05, 0.4, count - 1)):
        tt = np.arange(length, dtype=np.float32)
        env[s:s + length] = np.minimum(1.0, tt / (0.003 * sr)) * (
            0.1 + 0.9 * np.exp(-tt / np.float32(length * rng.uniform(0.2, 0.5))))
    return x * env


def hiss(rng, n, sr):
    """Steady high-passed noise (steam, air leaks, tape hiss)."""
    fc = logu(rng, 1500.0, min(6000.0, 0.38 * sr))
    x = shaped_noise(rng, n, sr, highpass_gain(fc, rng.choice([2, 4, 8])))
    drift = np.maximum(1 + 0.1 * smooth_random(rng, n, sr, 0.5), 0.3).astype(np.float32)
    return x * drift * ar_env(n, sr, rng.uniform(0.01, 0.5), rng.uniform(0.05, 0.5))


def rumble(rng, n, sr):
    """Deep low-passed noise that swells (thunder, distant traffic, earthquakes)."""
    fc = logu(rng, 40.0, 250.0)
    x = shaped_noise(rng, n, sr, lambda f: lowpass_gain(fc, 4)(f) + 0.003)
    swell = np.maximum(1 + rng.uniform(0.2, 0.8) * smooth_random(rng, n, sr, rng.uniform(0.3, 2.0)), 0.1)
    return x * swell.astype(np.float32) * ar_env(n, sr, rng.uniform(0.05, 1.0), rng.uniform(0.2, 1.5))


def band_noise(rng, n, sr):
    """A narrow band of noise (a breathy whistle, a tuned fan, a resonant duct)."""
    fc = logu(rng, 200.0, min(6000.0, 0.4 * sr))
    width = rng.uniform(0.05, 0.3)
    x = shaped_noise(rng, n, sr, lambda f: log_bump(f, fc, width))
    drift = np.maximum(1 + 0.2 * smooth_random(rng, n, sr, 1.0), 0.3).astype(np.float32)
    return x * drift * ar_env(n, sr, 0.05, 0.1)


def wind(rng, n, sr):
    """Gusting wind: noise whose band drifts between low and mid, deep slow level
    changes, sometimes a whistling resonance."""
    bands = logu(rng, 150.0, 1500.0) * np.array([0.5, 1.0, 2.0])
    width = rng.uniform(0.6, 1.2)
    xs = [unit_rms(shaped_noise(rng, n, sr, lambda f, c=c: log_bump(f, c, width))) for c in bands]
    w = np.stack([np.exp(smooth_random(rng, n, sr, rng.uniform(0.1, 0.5))) for _ in bands])
    w /= w.sum(axis=0, keepdims=True)
    x = sum(np.float32(1) * wi.astype(np.float32) * xi for wi, xi in zip(w, xs))
    if rng.random() < 0.4:
        fw = logu(rng, 500.0, 2500.0)
        x += rng.uniform(0.1, 0.5) * unit_rms(shaped_noise(rng, n, sr, lambda f: log_bump(f, fw, 0.04)))
    gust = np.exp(rng.uniform(0.3, 1.0) * smooth_random(rng, n, sr, rng.uniform(0.1, 0.8)))
    return x * gust.astype(np.float32)


# ---------------------------------------------------------------------------
# textures

def rain(rng, n, sr):
    """Rain: a broad wash of noise plus many drop impacts and a few plinks."""
    dur = n / sr
    fc = logu(rng, 1500.0, 0.45 * sr)
    wash = shaped_noise(rng, n, sr, lambda f: lowpass_gain(fc, 2)(f) * highpass_gain(200.0, 2)(f))
    rate = logu(rng, 200.0, 3000.0)
    count = int(min(rng.poisson(rate * dur), 30000))
    imp = impulse_train(n, rng.integers(0, n, count), np.minimum(rng.pareto(2.0, count), 10.0) * rng.choice([-1.0, 1.0], count))
    drops = sosfilt(resonators([logu(rng, 600.0, 3000.0)], [rng.uniform(1000.0, 3000.0)], sr, bandpass=True), imp)
    k = int(min(rng.poisson(rng.uniform(3.0, 30.0) * dur), 300))
    x = rng.uniform(0.3, 0.7) * unit_rms(wash) + unit_rms(drops)
    if k:
        length = int(0.05 * sr)
        t = sample_times(length, sr)[None, :]
        f = logu(rng, 1000.0, min(5000.0, 0.42 * sr), k).astype(np.float32)[:, None]
        tau = rng.uniform(0.004, 0.012, k).astype(np.float32)[:, None]
        plinks = np.sin(TWO_PI * f * t) * np.exp(-t / tau) * np.float32(rng.uniform(0.5, 2.0, k))[:, None]
        x += scatter_rows(n, rng.integers(0, n, k), plinks)
    return x


def fire_crackle(rng, n, sr):
    """A wood fire: a low flickering roar and sparse loud pops and snaps."""
    dur = n / sr
    fr = logu(rng, 100.0, 600.0)
    roar = shaped_noise(rng, n, sr, lambda f: lowpass_gain(fr, 2)(f))
    flicker = np.maximum(1 + 0.5 * smooth_random(rng, n, sr, rng.uniform(2.0, 10.0)), 0.1).astype(np.float32)
    rate = logu(rng, 3.0, 30.0)
    count = int(min(rng.poisson(rate * dur) + 1, 600))
    base = rng.integers(0, n, count)
    cluster = rng.random(count) < 0.3  # snaps come in little clusters
    pos = np.concatenate([base, (base[cluster] + rng.integers(50, 2000, cluster.sum())) % n])
    amps = np.minimum(rng.pareto(1.8, len(pos)) + 0.3, 6.0) * rng.choice([-1.0, 1.0], len(pos))
    snap = sosfilt(resonators([logu(rng, 1200.0, min(4000.0, 0.4 * sr))], [rng.uniform(800, 2500)], sr,
                                bandpass=True), impulse_train(n, pos, amps))
    return rng.uniform(0.3, 0.8) * unit_rms(roar) * flicker + unit_rms(snap)


def bubbles(rng, n, sr):
    """Bubbling (aquarium, boiling, blowing through a straw): discrete, tonal
    bubbles whose pitch rises as they close, 3-25 a second."""
    dur = n / sr
    rate = logu(rng, 3.0, 25.0)
    count = int(min(rng.poisson(rate * dur) + 2, 300))
    length = int(0.1 * sr)
    f_mid = logu(rng, 250.0, 1200.0)
    f = (f_mid * rng.lognormal(0.0, 0.3, count)).astype(np.float32)[:, None]
    tau = rng.uniform(0.01, 0.03, count).astype(np.float32)[:, None]
    xi = rng.uniform(0.2, 1.0, count).astype(np.float32)[:, None]
    t = sample_times(length, sr)[None, :]
    hits = np.sin(TWO_PI * f * (t + xi / (2 * tau) * t * t)) * np.exp(-t / tau)
    hits *= np.float32(rng.uniform(0.3, 1.0, count))[:, None]
    pos = np.sort(rng.integers(0, max(1, n - length // 2), count))
    pos[0] = 0
    return scatter_rows(n, pos, hits)


def engine(rng, n, sr):
    """Combustion engines (cars, motorbikes, mowers): firing-rate harmonics and
    noise pulsed at the firing rate; the revs change slowly."""
    dur = n / sr
    fire = logu(rng, 15.0, 90.0)
    k = int(rng.integers(1, 4))
    times = np.sort(np.concatenate([[0.0, dur], rng.uniform(0, dur, k - 1)]))
    revs = fire * np.exp(curve(times, rng.uniform(-0.35, 0.35, k + 1), n, sr))
    revs *= 1 + 0.01 * smooth_random(rng, n, sr, 4.0)
    cyc = cycles(revs, sr, rng)
    h = np.arange(1, n_harmonics(revs.max(), sr, cap=60) + 1)
    harm = osc(harmonic_table(h ** -rng.uniform(0.6, 1.5) * rng.lognormal(0, 0.5, len(h)), rng), cyc)
    fc = logu(rng, 300.0, 2000.0)
    noise = shaped_noise(rng, n, sr, lowpass_gain(fc, 2))
    pulse = (0.5 + 0.5 * np.cos(TWO_PI * cyc)) ** np.float32(rng.uniform(1.0, 6.0))
    mix = rng.uniform(0.3, 0.8)
    return (mix * unit_rms(harm) + (1 - mix) * unit_rms(noise * pulse)) * ar_env(n, sr, 0.2, 0.3)


def motor_hum(rng, n, sr):
    """Electrical hum (transformers, fridges, fans): a very steady low harmonic
    comb at mains-related pitches, and a faint high whine."""
    f0 = rng.choice([50.0, 60.0, 100.0, 120.0]) if rng.random() < 0.5 else logu(rng, 80.0, 400.0)
    h = np.arange(1, n_harmonics(f0, sr, cap=30) + 1)
    amps = h ** -rng.uniform(1.0, 2.5) * rng.lognormal(0, 0.5, len(h))
    if rng.random() < 0.5:
        amps[1::2] *= 0.1  # odd harmonics (magnetostriction hums at 2x mains)
    x = harmonic_wave(rng, np.full(n, f0), sr, amps)
    fw = logu(rng, 1000.0, min(6000.0, 0.4 * sr))
    x += rng.uniform(0.0, 0.2) * sine_wave(np.full(n, fw), sr, rng)
    am = 1 + rng.uniform(0.0, 0.1) * np.sin(TWO_PI * np.float32(rng.uniform(0.2, 3.0)) * sample_times(n, sr))
    return x * am * ar_env(n, sr, 0.1, 0.2)
