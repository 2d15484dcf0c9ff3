"""Impulsive sound families of the broad tagging corpus: knocks, steps, ticks, rattles, claps, bells, strings, drums.

Each ``model(rng, n, sr)`` returns n float32 samples of one event whose
resonances, onset pattern and decay are drawn from ``rng``;
``tagging_corpus.synthesize_family_event`` finishes and normalises it.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
from scipy import signal

from .sound_blocks import (TWO_PI, damped_modes, decay_samples, fit_onsets, harmonic_wave,
                           impulse_train, pattern_count, place_copies, sample_times, scatter_rows,
                           struck_modes, white_noise)
from .sound_synthesis import (ar_env, cycles, log_bump, logu, n_harmonics, resonators, shaped_noise,
                              smooth_random, sosfilt, unit_rms)


# ---------------------------------------------------------------------------
# impacts and impulse trains

def knock(rng, n, sr):
    """Knocking on a door or table: groups of 2-5 knocks on a wooden resonance."""
    dur = n / sr
    tau = rng.uniform(0.008, 0.04)
    length = decay_samples(tau, sr, n, 30)
    k = int(rng.integers(2, 5))
    tmpl = damped_modes(length, sr, logu(rng, 100.0, 900.0, k), tau * rng.uniform(0.5, 1.0, k), rng.uniform(0.3, 1.0, k), rng)
    tmpl[:int(0.001 * sr)] += rng.uniform(0.5, 2.0) * white_noise(rng, int(0.001 * sr))
    gap = rng.uniform(0.1, 0.25)
    per_group = int(rng.integers(2, 6))
    iois = []
    for _ in range(max(1, int(dur / (per_group * gap + 0.8)))):
        iois += list(gap * rng.uniform(0.85, 1.15, per_group - 1)) + [rng.uniform(0.4, 1.5)]
    pos = fit_onsets(np.array(iois[:-1]) if len(iois) > 1 else np.array([gap]), n - length)
    return place_copies(n, pos, rng.uniform(0.6, 1.0, len(pos)), tmpl)


def footsteps(rng, n, sr):
    """Walking: a heel thud then a toe scuff per step, 1.4-2.4 steps a second,
    left and right feet slightly different."""
    dur = n / sr
    ioi = 1.0 / rng.uniform(1.4, 2.4)
    count = pattern_count(dur, ioi, 30)
    length = int(0.18 * sr)
    pos = fit_onsets(ioi * rng.uniform(0.93, 1.07, count), n - length)
    c = len(pos)
    f_thud, f_scuff = logu(rng, 80.0, 400.0), logu(rng, 1000.0, min(5000.0, 0.4 * sr))
    thud = sosfilt(resonators([f_thud], [f_thud * 0.8], sr, bandpass=True), white_noise(rng, (c, length)))
    scuff = sosfilt(resonators([f_scuff], [f_scuff * 0.6], sr, bandpass=True), white_noise(rng, (c, length)))
    tt = np.arange(length, dtype=np.float32) / sr
    delay = rng.uniform(0.03, 0.08)
    e_thud = np.exp(-tt / np.float32(rng.uniform(0.015, 0.04)))
    e_scuff = np.where(tt >= delay, np.exp(-(tt - delay) / np.float32(rng.uniform(0.01, 0.04))), 0.0)
    mix = rng.uniform(0.2, 0.8)
    hits = unit_rms(thud) * e_thud + mix * unit_rms(scuff) * e_scuff.astype(np.float32)
    foot = np.where(np.arange(c) % 2 == 0, 1.0, rng.uniform(0.6, 1.0))
    return scatter_rows(n, pos, hits * (foot * rng.uniform(0.7, 1.0, c))[:, None].astype(np.float32))


def clock_tick(rng, n, sr):
    """A clock: exactly regular tiny high clicks, tick and tock of two pitches."""
    rate = rng.uniform(1.0, 5.0)
    t_len = int(0.03 * sr)
    ticks = []
    for _ in range(2):
        k = 3
        ticks.append(damped_modes(t_len, sr, logu(rng, 1500.0, min(6000.0, 0.42 * sr), k),
                            rng.uniform(0.001, 0.005, k), rng.uniform(0.3, 1.0, k), rng))
    pos = np.arange(0, max(1, n - t_len), int(sr / rate))
    out = np.zeros(n, dtype=np.float32)
    for j in range(2):
        p = pos[j::2]
        if len(p):
            out += place_copies(n, p, np.ones(len(p)), ticks[j])
    return out


def rattle(rng, n, sr):
    """Shaken rattles, ratchets, maracas: dense irregular clicks of a small hard
    resonator, their rate pulsing with the shaking."""
    dur = n / sr
    rate = logu(rng, 15.0, 120.0)
    shake = rng.uniform(2.0, 7.0)
    count = int(min(rng.poisson(rate * dur) + 2, 2000))
    pos = rng.integers(0, n, count)
    phase = (pos / sr * shake) % 1.0
    keep = rng.random(count) < 0.25 + 0.75 * (phase < 0.5)
    pos = pos[keep]
    tau = rng.uniform(0.002, 0.012)
    length = decay_samples(tau, sr, n, 30)
    k = 3
    tmpl = damped_modes(length, sr, logu(rng, 500.0, min(5000.0, 0.42 * sr), k), tau * rng.uniform(0.5, 1, k),
                  rng.uniform(0.3, 1.0, k), rng)
    amps = np.minimum(rng.pareto(2.5, len(pos)) + 0.3, 5.0)
    x = place_copies(n, pos, amps, tmpl)
    x += place_copies(n, np.array([0, max(0, n - length)]), np.array([1.0, 1.0]), tmpl)  # sounds to its end
    return x


def hammering(rng, n, sr):
    """Hammer on metal or a nail: regular hits, a thud and bright inharmonic rings."""
    dur = n / sr
    ioi = 1.0 / rng.uniform(1.0, 5.0)
    tau = rng.uniform(0.02, 0.15)
    tail = decay_samples(tau, sr, n)
    pos = fit_onsets(ioi * rng.uniform(0.9, 1.1, pattern_count(dur, ioi, 50)), n - tail)
    strikes = impulse_train(n, pos, rng.uniform(0.6, 1.0, len(pos)))
    k = int(rng.integers(3, 7))
    freqs = np.concatenate([[logu(rng, 100.0, 300.0)], logu(rng, 1500.0, min(7000.0, 0.42 * sr), k)])
    taus = np.concatenate([[0.02], tau * rng.uniform(0.3, 1.0, k)])
    return struck_modes(n, sr, strikes, freqs, taus, np.concatenate([[rng.uniform(0.5, 1.5)], rng.uniform(0.2, 1.0, k)]), rng)


def typing(rng, n, sr):
    """Keyboard typing: bursts of irregular key clicks, a few key sounds."""
    dur = n / sr
    mean = rng.uniform(0.08, 0.25)
    count = pattern_count(dur, mean, 120)
    iois = mean * rng.lognormal(0.0, 0.4, count)
    iois[rng.random(count) < 0.08] += rng.uniform(0.3, 0.8)  # pauses between words
    length = int(0.03 * sr)
    pos = fit_onsets(iois, n - length)
    out = np.zeros(n, dtype=np.float32)
    which = rng.integers(3, size=len(pos))
    which[-1] = 0
    for j in range(3):
        tmpl = damped_modes(length, sr, np.concatenate([[logu(rng, 200.0, 800.0)], logu(rng, 2000.0, min(6500.0, 0.42 * sr), 2)]),
                      rng.uniform(0.002, 0.01, 3), rng.uniform(0.3, 1.0, 3), rng)
        tmpl[:int(0.002 * sr)] += 0.3 * white_noise(rng, int(0.002 * sr))
        p = pos[which == j]
        if len(p):
            out += place_copies(n, p, rng.uniform(0.5, 1.0, len(p)), tmpl)
    return out


def heartbeat(rng, n, sr):
    """Heartbeats: a low 'lub' and a softer 'dub', 0.8-2.2 times a second."""
    dur = n / sr
    ioi = 1.0 / rng.uniform(0.8, 2.2)
    length = int(0.12 * sr)
    gap = rng.uniform(0.2, 0.35) * min(1.0, ioi / 0.6)
    pos = fit_onsets(ioi * rng.uniform(0.97, 1.03, pattern_count(dur, ioi, 30)), n - length - int(gap * sr))
    lub = damped_modes(length, sr, logu(rng, 30.0, 90.0, 2), rng.uniform(0.02, 0.05, 2), [1.0, 0.5], rng)
    dub = damped_modes(length, sr, logu(rng, 50.0, 140.0, 2), rng.uniform(0.015, 0.04, 2), [1.0, 0.5], rng)
    return place_copies(n, pos, np.ones(len(pos)), lub) + \
        place_copies(n, pos + int(gap * sr), np.full(len(pos), rng.uniform(0.4, 0.8)), dub)


def applause(rng, n, sr):
    """Applause: many hands, dense random claps (noise bursts of a few band colours)."""
    dur = n / sr
    rate = logu(rng, 20.0, 250.0)
    count = int(min(rng.poisson(rate * dur) + 2, 2500))
    length = int(0.015 * sr)
    pos = np.sort(rng.integers(0, max(1, n - length), count))
    pos[0], pos[-1] = 0, max(0, n - length)
    hits = white_noise(rng, (count, length)) * np.exp(-np.arange(length, dtype=np.float32) / np.float32(0.004 * sr))
    group = rng.integers(4, size=count)
    for g in range(4):
        fc = logu(rng, 700.0, 3000.0)
        sel = group == g
        if sel.any():
            hits[sel] = sosfilt(resonators([fc], [fc * rng.uniform(0.5, 1.2)], sr, bandpass=True), hits[sel])
    hits *= np.float32(rng.uniform(0.3, 1.0, count))[:, None]
    swell = np.maximum(1 + 0.3 * smooth_random(rng, n, sr, 0.5), 0.2).astype(np.float32)
    return scatter_rows(n, pos, hits) * swell


def sawing(rng, n, sr):
    """Sawing wood: back-and-forth strokes of rasping noise, the teeth rate
    following the stroke speed."""
    t = sample_times(n, sr)
    stroke = rng.uniform(0.35, 1.2)
    speed = np.abs(np.sin(np.pi * t / np.float32(stroke) + np.float32(0.5 * np.pi * rng.random())))
    teeth = cycles(rng.uniform(150.0, 600.0) * (0.2 + speed.astype(np.float64)), sr, rng)
    fc = logu(rng, 1200.0, min(5000.0, 0.4 * sr))
    band = shaped_noise(rng, n, sr, lambda f: log_bump(f, fc, rng.uniform(0.5, 1.2)) + 0.03)
    rasp = 1 + rng.uniform(0.5, 1.0) * np.cos(TWO_PI * teeth)
    return band * rasp * (0.1 + speed)


def creak(rng, n, sr):
    """A creaking door or floorboard: stick-slip pulses at a slowly wandering
    rate (15-150 Hz) ringing a wooden body."""
    f0 = logu(rng, 15.0, 150.0)
    freq = f0 * np.exp(0.5 * smooth_random(rng, n, sr, rng.uniform(0.5, 3.0)))
    k = np.arange(1, n_harmonics(freq.max(), sr, cap=200) + 1)
    pulses = harmonic_wave(rng, freq, sr, k ** -0.1)
    fm = logu(rng, 300.0, min(3000.0, 0.4 * sr), 3)
    y = sosfilt(resonators(fm, rng.uniform(40.0, 200.0, 3), sr, bandpass=True), pulses)
    am = np.maximum(1 + 0.5 * smooth_random(rng, n, sr, 4.0), 0.1).astype(np.float32)
    return y * am * ar_env(n, sr, 0.05, 0.1)


# ---------------------------------------------------------------------------
# resonators: bells, chimes, strings, drums

def bell(rng, n, sr):
    """Struck bells (church, hand, ship): inharmonic partials with beating pairs,
    high partials dying first; 1-4 strikes, the last ringing to the end."""
    dur = n / sr
    f_nom = logu(rng, 180.0, 1400.0)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.67, 3.0, 4.0])
    pick = np.sort(rng.choice(len(ratios), int(rng.integers(4, 8)), replace=False))
    r = ratios[pick] * rng.uniform(0.98, 1.02, len(pick))
    freqs = np.concatenate([f_nom * r, f_nom * r[:2] + rng.uniform(0.5, 3.0, 2)])  # beating
    tau0 = min(logu(rng, 0.4, 3.0), dur / 2.3)
    taus = np.concatenate([tau0 * r ** -0.7, tau0 * r[:2] ** -0.7])
    amps = np.concatenate([rng.uniform(0.3, 1.0, len(r)), rng.uniform(0.2, 0.6, 2)])
    strikes_n = int(rng.integers(1, 5))
    tail = int(2.3 * tau0 * sr)
    pos = fit_onsets(rng.uniform(0.5, 1.5, strikes_n - 1), max(0, n - tail)) if strikes_n > 1 \
        else np.zeros(1, np.int64)
    return struck_modes(n, sr, impulse_train(n, pos, rng.uniform(0.7, 1.0, len(pos))), freqs, taus, amps, rng)


def wind_chimes(rng, n, sr):
    """Wind chimes: 3-7 tuned tubes (free-bar modes 1 : 2.76 : 5.40), struck at
    random as the wind moves them."""
    dur = n / sr
    tubes = int(rng.integers(3, 8))
    base = logu(rng, 500.0, 2500.0)
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
            strikes = impulse_train(n, pos[sel], rng.uniform(0.3, 1.0, sel.sum()))
            out += struck_modes(n, sr, strikes, fund[j] * np.array([1.0, 2.76, 5.40]),
                           tau * np.array([1.0, 0.5, 0.25]), [1.0, 0.4, 0.2], rng)
    return out


def plucked_string(rng, n, sr):
    """Plucked strings (guitar, harp, pizzicato) by Karplus-Strong, computed in
    the frequency domain: the string loop 1 / (1 - g (1 + z^-1) / 2 z^-P) is
    applied to the pluck's spectrum in one FFT per note (P may be fractional)."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.25, 1.0)), 1, 10))
    root = logu(rng, 80.0, 500.0)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    bright = rng.uniform(0.2, 0.95)
    out = np.zeros(n, dtype=np.float32)
    starts = fit_onsets(rng.uniform(0.7, 1.3, count - 1), int(n * (1 - 1 / (count + 1)))) if count > 1 \
        else np.zeros(1, np.int64)
    for i, s in enumerate(starts):
        length = n - s if i == len(starts) - 1 else int(min(n - s, (starts[i + 1] - s) * rng.uniform(1.0, 2.5)))
        f0 = root * 2 ** (scale[rng.integers(len(scale))] / 12)
        period = sr / f0 - 0.5  # the two-point average delays by half a sample
        decay_db = rng.uniform(20.0, 45.0)
        g = 10 ** (-decay_db / 20 / (length / (period + 0.5)))
        m = max(2, int(round(period)))
        exc = white_noise(rng, m)
        exc = signal.lfilter([1 - bright], [1, -bright], exc).astype(np.float32)  # soft plucks are darker
        beta = int(round(rng.uniform(0.1, 0.5) * m))
        exc[beta:] -= exc[:m - beta]  # pluck position: a comb on the excitation
        n_fft = scipy.fft.next_fast_len(2 * length, real=True)
        w = 2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft
        loop = g * 0.5 * (1 + np.exp(-1j * w)) * np.exp(-1j * w * period)
        spec = scipy.fft.rfft(exc, n_fft) / (1 - loop)
        out[s:s + length] += scipy.fft.irfft(spec, n_fft)[:length].astype(np.float32)
    return out


def drum(rng, n, sr):
    """Toms and kick drums: a sine whose pitch drops fast after the hit, plus a
    noise click; 1-2 drums playing a beat at 60-180 BPM."""
    dur = n / sr
    beat = 60.0 / rng.uniform(60.0, 180.0) * rng.choice([0.5, 1.0, 2.0])
    out = np.zeros(n, dtype=np.float32)
    drums = int(rng.integers(1, 3))
    for d in range(drums):
        f1 = logu(rng, 40.0, 250.0)
        f0 = f1 * rng.uniform(1.5, 3.0)
        tau_a = rng.uniform(0.05, 0.3)
        length = decay_samples(tau_a, sr, n)
        tt = np.arange(length) / sr
        tau_p = rng.uniform(0.01, 0.05)
        freq = f1 + (f0 - f1) * np.exp(-tt / tau_p)
        body = np.sin(2 * np.pi * np.cumsum(freq) / sr).astype(np.float32) * np.exp(-tt / tau_a).astype(np.float32)
        click = int(0.005 * sr)
        body[:click] += rng.uniform(0.1, 0.6) * white_noise(rng, click) * np.linspace(1, 0, click, dtype=np.float32)
        count = pattern_count(dur, beat, 60)
        pos = fit_onsets(beat * rng.uniform(0.98, 1.02, count), n - length)
        if d == 1:
            pos = pos[1::2] if len(pos) > 2 else pos
        out += place_copies(n, pos, rng.uniform(0.7, 1.0, len(pos)), body)
    return out


def snare(rng, n, sr):
    """Snare drums: a short tonal body and a bright rattle of noise; beats and rolls."""
    dur = n / sr
    tau_n = rng.uniform(0.05, 0.2)
    length = decay_samples(tau_n, sr, n)
    tt = np.arange(length, dtype=np.float32) / sr
    fc = logu(rng, 1500.0, min(6000.0, 0.4 * sr))
    noise = sosfilt(resonators([fc], [fc * 1.2], sr, bandpass=True), white_noise(rng, length))
    tone = np.sin(TWO_PI * np.float32(rng.uniform(150.0, 300.0)) * tt)
    tmpl = unit_rms(noise) * np.exp(-tt / np.float32(tau_n)) + rng.uniform(0.3, 1.5) * tone * np.exp(-tt / np.float32(0.03))
    if rng.random() < 0.3:  # a roll: 10-20 strokes a second
        ioi = 1.0 / rng.uniform(10.0, 20.0)
    else:
        ioi = 60.0 / rng.uniform(70.0, 180.0) * rng.choice([0.5, 1.0, 2.0])
    count = pattern_count(dur, ioi, 200)
    pos = fit_onsets(ioi * rng.uniform(0.95, 1.05, count), n - length)
    return place_copies(n, pos, rng.uniform(0.5, 1.0, len(pos)), tmpl)
