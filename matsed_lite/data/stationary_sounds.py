"""Procedural models of DESED's five long, stationary classes: blenders, electric shavers
and toothbrushes, frying, running water and vacuum cleaners.

Each ``model(rng, n, sr)`` returns n float32 samples of one event whose pitch,
length, envelope, timbre and repetition are drawn from ``rng``
(``event_sounds.synthesize_event`` finishes and normalises it).
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from .sound_synthesis import (curve, cycles, harmonic_table, log_bump, logu, n_harmonics, osc,
                              resonators, shaped_noise, smooth_random, sosfilt, unit_rms)


def blender(rng, n, sr):
    """Motor harmonics plus churning broadband noise; the speed steps between
    settings (with ramps), the load makes the level flutter."""
    dur = n / sr
    n_set = int(rng.integers(1, 5))
    levels = logu(rng, 100.0, 400.0, n_set)  # motor frequency per speed setting
    bounds = np.sort(rng.uniform(0.0, dur, n_set - 1))
    times, values = [0.0], [levels[0] * (rng.uniform(0.5, 0.8) if rng.random() < 0.5 else 1.0)]
    ramp = rng.uniform(0.1, 0.6)
    times.append(min(ramp, dur)); values.append(levels[0])
    for b, lv_prev, lv in zip(bounds, levels[:-1], levels[1:]):
        if b > times[-1]:
            times += [b, min(b + ramp, dur)]
            values += [lv_prev, lv]
    times.append(dur + 1.0); values.append(values[-1])
    freq = curve(np.array(times), np.array(values), n, sr)
    freq *= 1 + 0.01 * smooth_random(rng, n, sr, 5.0)
    kmax = n_harmonics(freq.max(), sr, cap=60)
    k = np.arange(1, kmax + 1)
    table = harmonic_table(k ** -rng.uniform(0.5, 1.2) * rng.lognormal(0, 0.5, kmax), rng)
    harm = osc(table, cycles(freq, sr, rng))
    centre, width = logu(rng, 300.0, 1500.0), rng.uniform(0.7, 1.3)
    noise = shaped_noise(rng, n, sr, lambda f: log_bump(f, centre, width) + 0.05)
    mix = rng.uniform(0.5, 0.85)  # the motor's whine dominates the churning
    speed = (freq / levels.mean()).astype(np.float32)
    load = 1.0 + rng.uniform(0.2, 0.6) * smooth_random(rng, n, sr, rng.uniform(3, 12))  # chunks hit the blades
    body = mix * unit_rms(harm) + (1 - mix) * unit_rms(noise)
    return body * speed * np.maximum(load, 0.2).astype(np.float32)  # faster is louder


def shaver(rng, n, sr):
    """A high, steady buzz: a harmonic comb whose strongest harmonics sit at
    1-6 kHz, slowly amplitude-modulated as it moves over face or teeth."""
    f0 = logu(rng, 80.0, 300.0)
    peak = logu(rng, 1200.0, min(6000.0, 0.4 * sr))
    width = rng.uniform(0.5, 1.5)
    kmax = n_harmonics(f0, sr, cap=120)
    k = np.arange(1, kmax + 1)
    amps = np.exp(-0.5 * (np.log2(k * f0 / peak) / width) ** 2) + 0.05 / k
    if rng.random() < 0.4:  # square-ish drive: odd harmonics dominate
        amps[1::2] *= 0.2
    table = harmonic_table(amps, rng)
    freq = np.full(n, f0) * (1 + 0.003 * smooth_random(rng, n, sr, 1.0))
    buzz = osc(table, cycles(freq, sr, rng))
    t = np.arange(n, dtype=np.float32) / sr
    am = 1 + rng.uniform(0.1, 0.5) * np.sin(np.float32(2 * np.pi * logu(rng, 0.2, 2.0)) * t
                                           + np.float32(rng.uniform(0, 6.3)))
    if rng.random() < 0.25:  # "pulse" mode of toothbrushes
        rate, duty = rng.uniform(1.0, 4.0), rng.uniform(0.5, 0.8)
        ph = rate * t
        gate = ((ph - np.floor(ph)) < duty).astype(np.float32)
        a = np.exp(-1.0 / (0.005 * sr))  # 5 ms edges, not clicks
        am *= signal.lfilter(np.float32([1 - a]), np.float32([1.0, -a]), np.maximum(gate, 0.3)).astype(np.float32)
    hiss = shaped_noise(rng, n, sr, lambda f: (f > 2000.0) * 1.0 + 0.01)
    return (buzz + rng.uniform(0.02, 0.1) * unit_rms(hiss)) * am


def frying(rng, n, sr):
    """Crackle: a dense random train of heavy-tailed impulses ringing through a
    bright resonance, over a hiss whose level drifts."""
    dur = n / sr
    rate = logu(rng, 100.0, 2000.0)
    count = int(rng.poisson(rate * dur))
    pos = rng.integers(0, n, count)
    # Heavy-tailed sizes (a few loud pops among many ticks), capped so that one
    # pop cannot dwarf the rest of the event.
    amp = np.minimum(rng.pareto(rng.uniform(1.5, 3.0), count) + 0.2, 20.0) * rng.choice([-1.0, 1.0], count)
    imp = np.bincount(pos, weights=amp, minlength=n).astype(np.float32)
    fc = logu(rng, 1500.0, min(6000.0, 0.42 * sr))
    crackle = sosfilt(resonators([fc], [rng.uniform(1000, 4000)], sr, bandpass=True), imp)
    hp = rng.uniform(1000.0, 3000.0)
    slope = rng.uniform(0.0, 1.0)
    hiss = shaped_noise(rng, n, sr, lambda f: (np.minimum(f / hp, 1.0) ** 4) * (np.maximum(f, hp) / hp) ** -slope)
    drift = np.maximum(1 + 0.3 * smooth_random(rng, n, sr, rng.uniform(0.3, 2.0)), 0.2).astype(np.float32)
    mix = rng.uniform(0.4, 0.85)
    return (mix * unit_rms(crackle) + (1 - mix) * unit_rms(hiss)) * drift


def running_water(rng, n, sr):
    """Band-limited noise with a gurgling modulation, plus bubbles: short decaying
    tones whose pitch rises (Minnaert resonances of collapsing air pockets)."""
    dur = n / sr
    centre, width = logu(rng, 500.0, 3000.0), rng.uniform(0.8, 2.0)
    base = shaped_noise(rng, n, sr, lambda f: log_bump(f, centre, width) + 0.02)
    gurgle = np.maximum(1 + rng.uniform(0.2, 0.6) * smooth_random(rng, n, sr, rng.uniform(8, 30)), 0.1)
    base = unit_rms(base * gurgle.astype(np.float32))
    rate = logu(rng, 20.0, 120.0)
    count = min(int(rng.poisson(rate * dur)), 1500)
    blen = int(0.015 * sr)  # 15 ms holds a bubble down to about -25 dB
    bubbles = np.zeros(n, dtype=np.float32)
    if count:
        f = logu(rng, 300.0, min(2500.0, 0.4 * sr), count).astype(np.float32)
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
    return mix * base + (1 - mix) * unit_rms(bubbles)


def vacuum(rng, n, sr):
    """Loud, nearly white broadband noise with a broad bump, plus the whine of
    the fan (blade-pass tone and motor harmonics); it may spin up or down."""
    dur = n / sr
    slope = rng.uniform(-0.3, 0.6)
    centre, boost = logu(rng, 400.0, 2500.0), rng.uniform(1.0, 4.0)
    cut = rng.uniform(4000.0, 0.5 * sr)
    noise = shaped_noise(rng, n, sr, lambda f: (np.maximum(f, 50.0) / 1000.0) ** (-slope / 2)
                          * (1 + boost * log_bump(f, centre, 1.2)) / (1 + (f / cut) ** 4))
    blades = int(rng.integers(5, 13))
    f_whine = logu(rng, 900.0, min(5000.0, 0.4 * sr))
    f_motor = f_whine / blades
    kmax = n_harmonics(f_motor, sr, cap=3 * blades)
    amps = np.zeros(kmax)
    amps[:min(3, kmax)] = rng.uniform(0.05, 0.3) * np.array([1.0, 0.5, 0.25])[:min(3, kmax)]
    for h, a in ((1, 1.0), (2, 0.3), (3, 0.1)):
        if h * blades <= kmax:
            amps[h * blades - 1] += a
    table = harmonic_table(amps, rng)
    times, speed = [0.0, dur + 1.0], [1.0, 1.0]
    if rng.random() < 0.3 and dur > 2.0:  # spin-up
        times, speed = [0.0, rng.uniform(0.5, 1.5)] + times[1:], [rng.uniform(0.4, 0.7), 1.0] + speed[1:]
    if rng.random() < 0.2 and dur > 3.0:  # spin-down
        t_end = dur - rng.uniform(0.5, 1.5)
        times, speed = times[:-1] + [t_end, dur + 1.0], speed[:-1] + [1.0, rng.uniform(0.5, 0.7)]
    spd = curve(np.array(times), np.array(speed), n, sr)
    spd *= 1 + 0.004 * smooth_random(rng, n, sr, 0.5)
    whine = osc(table, cycles(f_motor * spd, sr, rng))
    level = 10 ** (rng.uniform(-20.0, -6.0) / 20)
    wave = unit_rms(noise) + level * unit_rms(whine)
    nozzle = 1 + rng.uniform(0.05, 0.25) * smooth_random(rng, n, sr, rng.uniform(0.3, 1.0))
    return wave * (spd * spd * nozzle).astype(np.float32)


