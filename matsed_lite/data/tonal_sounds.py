"""Tonal sound families of the broad tagging corpus: tones, glides, sweeps, birds, signals, voices, animals.

Each ``model(rng, n, sr)`` returns n float32 samples of one event whose pitch,
length, envelope, timbre and repetition are drawn from ``rng``;
``tagging_corpus.synthesize_family_event`` finishes and normalises it.
"""
from __future__ import annotations

import numpy as np

from .impulsive_sounds import VOWELS, speech
from .sound_blocks import (TWO_PI, harmonic_wave, pattern_count, periodic_gate, sample_times,
                           sine_wave, smooth_gate)
from .sound_synthesis import (ar_env, burst_layout, curve, cycles, log_bump, logu, n_harmonics,
                              resonators, shaped_noise, smooth_random, sosfilt, unit_rms)


# ---------------------------------------------------------------------------
# tones and glides

def harmonic_tone(rng, n, sr):
    """A held harmonic note with vibrato: flute-, horn- or hum-like by its tilt."""
    f0 = logu(rng, 80.0, 1500.0)
    t = np.arange(n) / sr
    vib = rng.uniform(0.0, 0.02) * np.sin(2 * np.pi * rng.uniform(3.5, 7.5) * t + rng.uniform(0, 6.3))
    freq = f0 * (1 + vib) * (1 + 0.004 * smooth_random(rng, n, sr, 1.0))
    k = np.arange(1, n_harmonics(f0 * 1.05, sr, cap=40) + 1)
    amps = k ** -rng.uniform(0.5, 2.5) * rng.lognormal(0, 0.4, len(k))
    return harmonic_wave(rng, freq, sr, amps) * ar_env(n, sr, rng.uniform(0.01, 0.3), rng.uniform(0.05, 0.5))


def glide_tone(rng, n, sr):
    """A tone whose pitch glides through 2-5 turning points (slide whistle, sighs)."""
    dur = n / sr
    k = int(rng.integers(2, 6))
    times = np.sort(np.concatenate([[0.0, dur], rng.uniform(0, dur, k - 2)]))
    logf = rng.uniform(np.log(150.0), np.log(min(2500.0, 0.3 * sr)), k)
    freq = np.exp(curve(times, logf, n, sr))
    h = np.arange(1, n_harmonics(freq.max(), sr, cap=int(rng.integers(1, 7))) + 1)
    return harmonic_wave(rng, freq, sr, h ** -rng.uniform(1.0, 3.0)) * ar_env(n, sr, 0.02, 0.08)


def chirp_sweep(rng, n, sr):
    """Exponential sine sweeps, up or down, repeated (sonar, lasers, test signals)."""
    dur = n / sr
    period = logu(rng, 0.08, 1.0)
    m = pattern_count(dur, period, 100)
    period = dur / m
    sweep = period * rng.uniform(0.4, 1.0)
    fa, fb = logu(rng, 200.0, 0.42 * sr, 2)
    t = np.arange(n) / sr
    ph = (t % period) / sweep
    freq = fa * (fb / fa) ** np.clip(ph, 0.0, 1.0)
    gate = smooth_gate(ph < 1.0, sr, 0.002) if sweep < 0.95 * period else 1.0
    h = np.arange(1, n_harmonics(max(fa, fb), sr, cap=int(rng.integers(1, 4))) + 1)
    return harmonic_wave(rng, freq, sr, h ** -2.0) * gate


def bird_trill(rng, n, sr):
    """Fast repeated whistled notes (8-30 a second), each a small pitch flick,
    in phrases separated by pauses."""
    dur = n / sr
    fc = logu(rng, 1800.0, min(7000.0, 0.42 * sr))
    rate = rng.uniform(8.0, 30.0)
    depth = rng.uniform(0.05, 0.35) * rng.choice([-1.0, 1.0])
    duty = rng.uniform(0.4, 0.9)
    t = np.arange(n) / sr
    ph = (t * rate) % 1.0
    shape = np.clip(ph / duty, 0.0, 1.0)
    freq = fc * (1 + depth * (shape - 0.5)) * (1 + 0.05 * smooth_random(rng, n, sr, 1.0))
    gate = smooth_gate(ph < duty, sr, 0.002)
    count = pattern_count(dur, 1.2, 6)
    phrases = np.zeros(n, dtype=np.float32)
    for s, length in burst_layout(rng, n, sr, rng.uniform(0.4, 1.5, count), rng.uniform(0.1, 0.6, count - 1)):
        phrases[s:s + length] = ar_env(length, sr, 0.02, 0.05)
    x = sine_wave(freq, sr, rng) + rng.uniform(0.0, 0.3) * sine_wave(2 * freq, sr, rng) * (2 * fc < 0.45 * sr)
    return x * gate * phrases


def bird_song(rng, n, sr):
    """A song of 3-14 whistled notes, each with its own pitch and contour."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.15, 0.4)), 2, 14))
    f_lo, f_hi = 1500.0, min(6500.0, 0.4 * sr)
    freq = np.full(n, f_lo)
    gate = np.zeros(n, dtype=np.float32)
    for s, length in burst_layout(rng, n, sr, rng.uniform(0.05, 0.3, count), rng.uniform(0.02, 0.2, count - 1)):
        tt = np.linspace(0.0, 1.0, length)
        f0 = logu(rng, f_lo, f_hi)
        c = rng.uniform(-0.4, 0.4, 2)
        freq[s:s + length] = np.clip(f0 * np.exp(c[0] * tt + c[1] * tt * tt), f_lo * 0.6, 0.45 * sr)
        gate[s:s + length] = ar_env(length, sr, 0.005, 0.02 * rng.uniform(0.5, 3.0))
    return sine_wave(freq, sr, rng) * gate


def whistle(rng, n, sr):
    """A near-pure whistle (human, kettle, referee) with breath noise; held notes
    joined by portamento."""
    dur = n / sr
    k = int(rng.integers(1, 5))
    times = np.sort(np.concatenate([[0.0, dur], rng.uniform(0, dur, k - 1)]))
    f = np.repeat(logu(rng, 500.0, min(3200.0, 0.4 * sr), k), 2)
    hold = np.repeat(times[:-1], 2) + np.tile([0.0, 1.0], k) * np.repeat(np.diff(times), 2) * 0.85
    freq = np.exp(curve(hold, np.log(f), n, sr))
    freq *= 1 + rng.uniform(0.0, 0.015) * np.sin(2 * np.pi * rng.uniform(4, 7) * np.arange(n) / sr)
    fc = float(np.median(f))
    breath = shaped_noise(rng, n, sr, lambda fr: log_bump(fr, fc, 0.5) + 0.02)
    x = sine_wave(freq, sr, rng) + rng.uniform(0.02, 0.2) * unit_rms(breath)
    return x * ar_env(n, sr, rng.uniform(0.02, 0.15), rng.uniform(0.05, 0.2))


def buzz(rng, n, sr):
    """A square / pulse wave buzz (buzzers, electric fences, insects' drones)."""
    f0 = logu(rng, 50.0, 450.0)
    duty = rng.uniform(0.1, 0.5)
    k = np.arange(1, n_harmonics(f0, sr, cap=120) + 1)
    amps = np.abs(np.sin(np.pi * k * duty)) / k + 1e-3
    freq = np.full(n, f0) * (1 + 0.002 * smooth_random(rng, n, sr, 2.0))
    x = harmonic_wave(rng, freq, sr, amps)
    if rng.random() < 0.4:  # on/off in long stretches
        x *= periodic_gate(n, sr, rng.uniform(0.4, 1.5), rng.uniform(0.25, 0.35) * 1.5, 0.005)
    return x * ar_env(n, sr, 0.01, 0.03)


def synth_saw(rng, n, sr):
    """A sequence of sawtooth synthesiser notes through a low-pass filter whose
    cut-off falls over each note."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.2, 0.8)), 1, 12))
    root = logu(rng, 70.0, 500.0)
    scale = np.array([0, 2, 3, 5, 7, 8, 10, 12, 14, 15])
    out = np.zeros(n, dtype=np.float32)
    brightness = logu(rng, 600.0, 5000.0)
    for s, length in burst_layout(rng, n, sr, np.ones(count), rng.uniform(0.0, 0.3, count - 1)):
        f0 = root * 2 ** (scale[rng.integers(len(scale))] / 12)
        k = np.arange(1, n_harmonics(f0, sr, cap=60) + 1)
        bright = harmonic_wave(rng, np.full(length, f0), sr, 1.0 / k / np.sqrt(1 + (k * f0 / brightness) ** 4))
        dark = harmonic_wave(rng, np.full(length, f0), sr, 1.0 / k / np.sqrt(1 + (k * f0 / (0.3 * brightness)) ** 4))
        w = np.exp(-np.arange(length, dtype=np.float32) / np.float32(rng.uniform(0.05, 0.4) * sr))
        out[s:s + length] = (w * bright + (1 - w) * dark) * ar_env(length, sr, 0.005, 0.03)
    return out


def fm_tone(rng, n, sr):
    """FM synthesis notes: a carrier phase-modulated by a modulator at a ratio
    (harmonic or inharmonic), the index decaying over the note (e-pianos, bells,
    brass)."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.3, 1.2)), 1, 8))
    ratio = rng.choice([0.5, 1.0, 2.0, 3.0, 1.4, 3.5, rng.uniform(1.0, 4.0)])
    i0, tau_i = rng.uniform(1.0, 8.0), rng.uniform(0.05, 1.0)
    out = np.zeros(n, dtype=np.float32)
    for s, length in burst_layout(rng, n, sr, np.ones(count), rng.uniform(0.0, 0.2, count - 1)):
        fc = logu(rng, 150.0, 1800.0)
        fm = fc * ratio
        index = i0 * np.exp(-np.arange(length, dtype=np.float32) / np.float32(tau_i * sr)) + 0.3
        mod = np.sin(TWO_PI * cycles(np.full(length, fm), sr, rng))
        car = np.sin(TWO_PI * cycles(np.full(length, fc), sr, rng) + index * mod)
        out[s:s + length] = car * ar_env(length, sr, 0.005, length / sr * rng.uniform(0.2, 0.9))
    return out


def tremolo_tone(rng, n, sr):
    """A harmonic tone with deep, fast amplitude modulation (tremolo, warbles)."""
    f0 = logu(rng, 100.0, 1200.0)
    k = np.arange(1, n_harmonics(f0, sr, cap=20) + 1)
    x = harmonic_wave(rng, np.full(n, f0), sr, k ** -rng.uniform(0.8, 2.0))
    rate, depth = rng.uniform(3.0, 15.0), rng.uniform(0.6, 1.0)
    lfo = 0.5 + 0.5 * np.sin(TWO_PI * np.float32(rate) * sample_times(n, sr) + np.float32(rng.uniform(0, 6.3)))
    if rng.random() < 0.4:
        lfo = smooth_gate(lfo > 0.5, sr, 0.004)
    return x * (1 - depth * lfo) * ar_env(n, sr, 0.02, 0.08)


def organ_chord(rng, n, sr):
    """Held chords of 3-4 organ notes (additive drawbar harmonics), 1-4 chords."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.8, 2.5)), 1, 5))
    draw = rng.uniform(0.0, 1.0, 8) * np.array([1, 1, 0.8, 0.6, 0.4, 0.4, 0.3, 0.3])
    draw[0] = 1.0
    harmonic = np.array([1, 2, 3, 4, 6, 8, 10, 12])
    chords = [(0, 4, 7), (0, 3, 7), (0, 4, 7, 12), (0, 3, 7, 10), (0, 5, 7), (0, 4, 7, 11)]
    out = np.zeros(n, dtype=np.float32)
    fade = int(0.03 * sr)
    for s, length in burst_layout(rng, n, sr, np.ones(count), np.zeros(count - 1)):
        root = logu(rng, 90.0, 450.0)
        seg = np.zeros(length, dtype=np.float32)
        for step in chords[rng.integers(len(chords))]:
            f0 = root * 2 ** (step / 12)
            amps = np.zeros(12)
            ok = harmonic * f0 < 0.45 * sr
            amps[harmonic[ok] - 1] = draw[ok]
            seg += harmonic_wave(rng, np.full(length, f0), sr, amps)
        end = min(n, s + length + fade)
        out[s:end] += np.pad(seg, (0, end - s - length)) * ar_env(end - s, sr, 0.02, 0.03)
    return out


def siren(rng, n, sr):
    """Emergency sirens: slow wail, fast yelp, or a two-tone hi-lo."""
    dur = n / sr
    t = np.arange(n) / sr
    f_lo = logu(rng, 350.0, 900.0)
    f_hi = f_lo * rng.uniform(1.4, 2.4)
    kind = rng.integers(3)
    if kind == 2:  # hi-lo
        half = rng.uniform(0.3, 0.9)
        hi = ((t / half + rng.random()) % 2.0) < 1.0
        freq = curve(t[::64], np.where(hi[::64], f_hi, f_lo), n, sr)
    else:
        period = rng.uniform(2.0, 7.0) if kind == 0 else rng.uniform(0.15, 0.45)
        ph = t / period + rng.random()
        lfo = 0.5 - 0.5 * np.cos(2 * np.pi * ph)
        freq = f_lo * (f_hi / f_lo) ** lfo
    k = np.arange(1, n_harmonics(f_hi, sr, cap=10) + 1)
    x = harmonic_wave(rng, freq, sr, k ** -rng.uniform(0.7, 2.0))
    return x * ar_env(n, sr, min(0.3, 0.1 * dur), 0.2)


def dtmf(rng, n, sr):
    """Telephone keypad digits: pairs of one low and one high sine, 50-200 ms each."""
    dur = n / sr
    rows, cols = np.array([697.0, 770.0, 852.0, 941.0]), np.array([1209.0, 1336.0, 1477.0, 1633.0])
    on, off = rng.uniform(0.05, 0.2), rng.uniform(0.04, 0.2)
    count = int(np.clip(round(dur / (on + off)), 1, 40))
    low, high = np.full(n, rows[0]), np.full(n, cols[0])
    gate = np.zeros(n, dtype=np.float32)
    for s, length in burst_layout(rng, n, sr, on * rng.uniform(0.8, 1.2, count), off * rng.uniform(0.5, 2.0, count - 1)):
        low[s:s + length] = rows[rng.integers(4)]
        high[s:s + length] = cols[rng.integers(4)]
        gate[s:s + length] = 1.0
    twist = np.float32(10 ** (rng.uniform(-4, 2) / 20))
    x = sine_wave(low * rng.uniform(0.99, 1.01), sr, rng) + twist * sine_wave(high * rng.uniform(0.99, 1.01), sr, rng)
    return x * smooth_gate(gate, sr, 0.002)


def ringtone(rng, n, sr):
    """A phone ringing: two close tones (beating) or a warbled pair, in a cadence
    of rings and pauses."""
    dur = n / sr
    f1 = logu(rng, 300.0, 1100.0)
    f2 = f1 + rng.uniform(20.0, 60.0) if rng.random() < 0.5 else f1 * rng.uniform(1.1, 1.5)
    t = np.arange(n) / sr
    x = sine_wave(np.full(n, f1), sr, rng) + sine_wave(np.full(n, f2), sr, rng)
    if rng.random() < 0.4:  # warble between the two at 15-25 Hz
        sel = smooth_gate(((t * rng.uniform(15, 25)) % 1.0) < 0.5, sr, 0.002)
        x = sel * sine_wave(np.full(n, f1), sr, rng) + (1 - sel) * sine_wave(np.full(n, f2), sr, rng)
    on, off = rng.uniform(0.3, 2.0), rng.uniform(0.2, 3.0)
    if rng.random() < 0.35:  # double ring (ring-ring ... ring-ring)
        on, off = 0.4, 0.2
        cad = (t % 3.0 < 0.4) | ((t % 3.0 >= 0.6) & (t % 3.0 < 1.0))
    else:
        cad = (t % (on + off)) < on
    if dur < on + off:
        cad = np.ones(n, bool)
    return x * smooth_gate(cad, sr, 0.005)


def beeps(rng, n, sr):
    """Pure-sine beeps at a steady rate (reversing trucks, microwaves, timers),
    single or in pairs."""
    dur = n / sr
    f = logu(rng, 900.0, min(4500.0, 0.4 * sr))
    on = rng.uniform(0.05, 0.5)
    period = on * rng.uniform(1.5, 4.0)
    m = pattern_count(dur - on, period, 200) if dur > on else 0
    t = np.arange(n) / sr
    if m > 0:
        period = (dur - on) / m
        ph = t % period
        gate = ph < on
        if rng.random() < 0.3 and period > 3 * on:  # beep-beep
            gate |= (ph >= 1.5 * on) & (ph < 2.5 * on)
    else:
        gate = np.ones(n, bool)
    return sine_wave(np.full(n, f), sr, rng) * smooth_gate(gate, sr, 0.002)


# ---------------------------------------------------------------------------
# voices and animals

def babble(rng, n, sr):
    """Several people talking at once (restaurant, crowd): 2-3 speech-like voices,
    plus 0-2 more made by circularly shifting them (cheap: a voice is the
    costliest model here, and shifted voices are heard as other sentences)."""
    x = np.zeros(n, dtype=np.float32)
    for _ in range(int(rng.integers(2, 4))):
        v = unit_rms(speech(rng, n, sr).astype(np.float32))
        x += np.float32(rng.uniform(0.4, 1.0)) * v
        if rng.random() < 0.5:
            x += np.float32(rng.uniform(0.3, 0.8)) * np.roll(v, int(rng.integers(n // 4, 3 * n // 4 + 1)))
    return x


def singing(rng, n, sr):
    """Sung vowels: held notes of a melody with vibrato, through vowel formants."""
    dur = n / sr
    count = int(np.clip(round(dur / rng.uniform(0.35, 1.2)), 1, 12))
    f_voice = logu(rng, 100.0, 650.0)
    tract = rng.uniform(0.9, 1.3)
    scale = np.array([-5, -3, 0, 2, 4, 5, 7, 9])
    out = np.zeros(n, dtype=np.float32)
    bws = np.array([80.0, 110.0, 160.0]) * rng.uniform(0.8, 1.3)
    tilt = rng.uniform(0.7, 1.4)
    for s, length in burst_layout(rng, n, sr, rng.uniform(0.7, 1.3, count), rng.uniform(0.0, 0.15, count - 1)):
        f0 = f_voice * 2 ** (scale[rng.integers(len(scale))] / 12)
        tt = np.arange(length) / sr
        vib = 1 + rng.uniform(0.01, 0.035) * np.sin(2 * np.pi * rng.uniform(4.8, 6.5) * tt) \
            * np.minimum(1.0, tt / 0.3)
        k = np.arange(1, n_harmonics(f0 * 1.05, sr, cap=50) + 1)
        src = harmonic_wave(rng, f0 * vib, sr, k ** -tilt)
        fmt = VOWELS[rng.integers(len(VOWELS))] * tract
        keep = fmt < 0.45 * sr
        y = sosfilt(resonators(fmt[keep], bws[keep], sr), src)
        out[s:s + length] = y * ar_env(length, sr, rng.uniform(0.03, 0.1), rng.uniform(0.05, 0.15))
    return out


def insect(rng, n, sr):
    """Crickets (a high carrier pulsed in chirps of 3-8 pulses) or cicadas (a
    high noise band buzzing at 80-250 Hz, swelling slowly)."""
    t = np.arange(n) / sr
    if rng.random() < 0.55:
        fc = logu(rng, 2800.0, min(6500.0, 0.4 * sr))
        pulse_rate = rng.uniform(20.0, 60.0)
        pulses = int(rng.integers(3, 9))
        chirp_period = rng.uniform(0.25, 1.0)
        chirp_len = pulses / pulse_rate
        chirp_period = max(chirp_period, chirp_len * 1.3)
        gate = (((t * pulse_rate) % 1.0) < 0.6) & ((t % chirp_period) < chirp_len)
        return sine_wave(np.full(n, fc), sr, rng) * smooth_gate(gate, sr, 0.002)
    fc = logu(rng, 3000.0, min(7000.0, 0.42 * sr))
    band = shaped_noise(rng, n, sr, lambda f: log_bump(f, fc, rng.uniform(0.15, 0.4)))
    am = 0.5 + 0.5 * np.sin(TWO_PI * np.float32(rng.uniform(80.0, 250.0)) * sample_times(n, sr))
    swell = np.maximum(1 + 0.4 * smooth_random(rng, n, sr, rng.uniform(0.2, 1.0)), 0.2)
    return band * am * swell.astype(np.float32)


def frog(rng, n, sr):
    """Croaks: buzzy glottal pulse trains at 40-150 Hz through two formants,
    fluttering, repeated 1-5 times a second."""
    dur = n / sr
    f0 = logu(rng, 40.0, 150.0)
    k = np.arange(1, n_harmonics(f0, sr, cap=80) + 1)
    src = harmonic_wave(rng, np.full(n, f0) * (1 + 0.02 * smooth_random(rng, n, sr, 3.0)), sr, k ** -0.3)
    fm = np.array([logu(rng, 250.0, 700.0), logu(rng, 900.0, 2200.0)])
    y = sosfilt(resonators(fm, rng.uniform(80.0, 250.0, 2), sr), src)
    croak = rng.uniform(0.1, 0.45)
    count = pattern_count(dur, croak * rng.uniform(1.5, 4.0), 30)
    gate = np.zeros(n, dtype=np.float32)
    for s, length in burst_layout(rng, n, sr, croak * rng.uniform(0.8, 1.2, count), rng.uniform(0.1, 0.6, count - 1)):
        gate[s:s + length] = ar_env(length, sr, 0.01, 0.03)
    flutter = 1 - rng.uniform(0.2, 0.7) * (0.5 + 0.5 * np.sin(TWO_PI * np.float32(rng.uniform(10, 30))
                                                             * sample_times(n, sr)))
    return y * gate * flutter
