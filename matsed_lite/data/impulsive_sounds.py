"""Procedural models of DESED's five short, impulsive classes: alarm bells, cats, dishes,
dogs and speech.

Each ``model(rng, n, sr)`` returns n float32 samples of one event whose pitch,
length, envelope, timbre and repetition are drawn from ``rng``
(``event_sounds.synthesize_event`` finishes and normalises it).
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from .sound_synthesis import (ar_env, burst_count, burst_layout, cycles, harmonic_table, logu,
                              n_harmonics, osc, resonators, smooth_random, sosfilt)


def alarm(rng, n, sr):
    """Bells (inharmonic partials re-struck by a clapper or a striker), beepers
    (square-ish tones gated on/off, sometimes two-tone) or sweeping alarms."""
    dur = n / sr
    t = np.arange(n, dtype=np.float32) / sr
    kind = rng.choice(3, p=[0.4, 0.35, 0.25])
    if kind == 0:  # bell
        f_base = logu(rng, 500.0, min(2200.0, 0.2 * sr))
        n_part = int(rng.integers(4, 8))
        ratios = np.concatenate([[1.0], np.sort(rng.uniform(1.3, 5.5, n_part - 1))])
        ratios = ratios[f_base * ratios < 0.45 * sr]
        amps = rng.uniform(0.3, 1.0, len(ratios)) / ratios ** rng.uniform(0.3, 1.0)
        tau0 = logu(rng, 0.08, 0.8)
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
        f = logu(rng, 600.0, min(3200.0, 0.3 * sr))
        ratio = rng.uniform(1.2, 1.5) if rng.random() < 0.3 else 1.0
        kmax = n_harmonics(f * ratio, sr, cap=25)
        k = np.arange(1, kmax + 1)
        odd = rng.random() < 0.6  # square-ish buzzers have odd harmonics only
        amps = np.where((k % 2 == 1) | (not odd), k ** -rng.uniform(0.8, 1.8), 0.0)
        table = harmonic_table(amps, rng)
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
        return osc(table, cycles(freq, sr, rng)) * gate
    # sweeping alarm (siren-like or "whoop")
    f_lo = logu(rng, 500.0, min(1500.0, 0.15 * sr))
    f_hi = min(f_lo * rng.uniform(1.3, 2.5), 0.4 * sr)
    rate = logu(rng, 0.5, 8.0)
    ph = rate * t + rng.random()
    lfo = (ph - np.floor(ph)) if rng.random() < 0.4 else 0.5 - 0.5 * np.cos(2 * np.pi * ph)
    freq = f_lo * (f_hi / f_lo) ** lfo.astype(np.float64)
    kmax = n_harmonics(f_hi, sr, cap=8)
    table = harmonic_table(np.arange(1, kmax + 1) ** -rng.uniform(1.5, 3.0), rng)
    return osc(table, cycles(freq, sr, rng))


def cat(rng, n, sr):
    """Meows: a harmonic glide (rise then fall) with vibrato, whose formants open
    and close ("m-ee-ow") by cross-fading two resonator cascades."""
    dur = n / sr
    f_cat = logu(rng, 380.0, 850.0)            # this cat's voice
    tilt = rng.uniform(0.6, 1.4)
    open_f = np.array([logu(rng, 900, 1400), logu(rng, 1800, 3000), logu(rng, 3500, 4500)])
    closed_f = open_f * np.array([rng.uniform(0.5, 0.75), rng.uniform(0.5, 0.8), 0.9])
    bws = np.array([rng.uniform(100, 250), rng.uniform(150, 350), rng.uniform(250, 500)])
    keep = open_f < 0.45 * sr
    sos_open = resonators(open_f[keep], bws[keep], sr)
    sos_closed = resonators(closed_f[keep], bws[keep], sr)
    count = 1 if dur < 0.8 else int(rng.integers(1, min(3, int(dur / 0.45)) + 1))
    lengths = rng.uniform(0.6, 1.4, count)
    gaps = rng.uniform(0.05, 0.35, count - 1) / max(1.0, count / 2.0)
    out = np.zeros(n, dtype=np.float32)
    for start, length in burst_layout(rng, n, sr, lengths, gaps):
        tt = np.linspace(0.0, 1.0, length)
        f_start = f_cat * rng.uniform(0.85, 1.15)
        peak_at = rng.uniform(0.2, 0.6)
        rise = rng.uniform(0.1, 0.6)
        fall = rng.uniform(0.2, 0.5)
        bump = np.sin(np.pi * np.minimum(1.0, tt / (2 * peak_at)))
        contour = 1.0 + rise * bump - fall * np.maximum(0.0, tt - peak_at) ** 2 / (1 - peak_at) ** 2
        vib = 1.0 + rng.uniform(0.003, 0.03) * np.sin(2 * np.pi * rng.uniform(4, 8) * tt * length / sr)
        freq = f_start * contour * vib
        kmax = n_harmonics(freq.max(), sr, cap=30)
        k = np.arange(1, kmax + 1)
        table = harmonic_table(k ** -tilt * rng.lognormal(0.0, 0.3, kmax), rng)
        src = osc(table, cycles(freq, sr, rng))
        src += 0.05 * rng.standard_normal(length, dtype=np.float32)  # breath
        mouth = np.sin(np.pi * tt) ** rng.uniform(0.5, 2.0)
        mouth = mouth.astype(np.float32)
        y = (1 - mouth) * sosfilt(sos_closed, src) + mouth * sosfilt(sos_open, src)
        env = ar_env(length, sr, rng.uniform(0.02, 0.08), rng.uniform(0.06, 0.2))
        out[start:start + length] += y * env * rng.uniform(0.6, 1.0)
    return out


def dishes(rng, n, sr):
    """Clinks: each hit excites a few high, inharmonic, quickly damped partials of
    one of the objects in the scene (plates, glasses, cutlery), plus a click."""
    f_top = min(9000.0, 0.45 * sr)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(3, 8))
        freqs = logu(rng, 1500.0, f_top, k)
        taus = logu(rng, 0.01, 0.15, k) * (1.0 if rng.random() < 0.7 else 2.5)  # glass rings on
        amps = rng.uniform(0.2, 1.0, k)
        amps[np.argmax(taus)] = 1.0  # the longest-ringing partial is what is heard last
        objects.append((freqs, taus, amps))
    longest = max(o[1].max() for o in objects)
    ringing = max(range(len(objects)), key=lambda i: objects[i][1].max())
    hit_len = int(min(n, 2.3 * longest * sr))  # a hit decays to -20 dB over hit_len
    span = n - hit_len
    if span > 0:
        rate = logu(rng, 2.0, 12.0)  # hits per second (clattering at the high end)
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


def dog(rng, n, sr):
    """Barks: short, noisy harmonic bursts with a fast pitch rise and fall, shaped
    by the dog's formants (their height follows the dog's size); or a growl."""
    dur = n / sr
    size = rng.random()  # 0 = small dog, 1 = big dog
    f_dog = np.exp(np.interp(size, [0, 1], np.log([750.0, 170.0]))) * rng.lognormal(0, 0.1)
    formants = np.array([np.interp(size, [0, 1], [1100, 500]), np.interp(size, [0, 1], [2500, 1300]),
                         3300.0]) * rng.uniform(0.85, 1.15, 3)
    bws = rng.uniform(150, 400, 3)
    keep = formants < 0.45 * sr
    sos = resonators(formants[keep], bws[keep], sr)
    growl = dur > 0.6 and rng.random() < 0.15
    if growl:
        segments = [(0, n)]
    else:
        mean_len = rng.uniform(0.08, 0.2) * (1 + 0.5 * size)
        mean_gap = rng.uniform(0.1, 0.45)
        count = burst_count(dur, mean_len, mean_gap, 12)
        segments = burst_layout(rng, n, sr, mean_len * rng.uniform(0.8, 1.2, count),
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
        kmax = n_harmonics(freq.max(), sr, cap=40)
        table = harmonic_table(np.arange(1, kmax + 1) ** -tilt, rng)
        src = voicing * osc(table, cycles(freq, sr, rng))
        src += (1 - voicing) * 1.5 * rng.standard_normal(length, dtype=np.float32)
        if growl:  # growls are rough: fast amplitude flutter
            flutter = rng.uniform(18, 35) * np.arange(length) / sr
            src *= (1.0 - rng.uniform(0.4, 0.8) * (0.5 + 0.5 * np.sin(2 * np.pi * flutter))).astype(np.float32)
            env = ar_env(length, sr, 0.1, 0.15)
        else:
            env = ar_env(length, sr, rng.uniform(0.004, 0.015), length / sr * rng.uniform(0.5, 0.8))
        out[start:start + length] += src * env * rng.uniform(0.6, 1.0)
    return sosfilt(sos, out)


# Vowel formants (F1, F2, F3, Hz) of an adult male voice (Peterson & Barney), a row per
# vowel; public: tonal_sounds' sung vowels use them too.
VOWELS = np.array([
    (270, 2290, 3010), (390, 1990, 2550), (530, 1840, 2480), (660, 1720, 2410),
    (730, 1090, 2440), (570, 840, 2410), (440, 1020, 2240), (300, 870, 2240),
    (640, 1190, 2390), (490, 1350, 1690),
], dtype=float)


def speech(rng, n, sr):
    """Syllable trains: a voiced harmonic source whose pitch follows a phrase
    contour (declination plus accents), through formant filters that glide from
    one vowel to another within each syllable; noise consonants; pauses."""
    dur = n / sr
    f_speaker = logu(rng, 85.0, 260.0)
    tract = rng.uniform(0.85, 1.25) * (f_speaker / 130.0) ** 0.15  # higher voices, shorter tracts
    syl = rng.uniform(0.12, 0.28)
    pause_p = rng.uniform(0.1, 0.35)
    count = burst_count(dur, syl, 0.03 + 0.25 * pause_p, 40)
    gaps = np.where(rng.random(max(0, count - 1)) < pause_p, rng.uniform(0.12, 0.4, max(0, count - 1)),
                    rng.uniform(0.0, 0.05, max(0, count - 1)))
    segments = burst_layout(rng, n, sr, syl * rng.uniform(0.6, 1.5, count), gaps)
    t_rel = np.arange(n) / max(n - 1, 1)
    decl = rng.uniform(0.1, 0.35)
    freq = f_speaker * (1 + decl / 2 - decl * t_rel)
    freq *= 1 + 0.04 * smooth_random(rng, n, sr, 6.0)
    accents = np.ones(n)
    for start, length in segments:
        accents[start:start + length] = 1 + rng.uniform(-0.12, 0.25) * np.sin(np.linspace(0, np.pi, length))
    freq *= accents
    kmax = n_harmonics(freq.max(), sr, cap=60)
    k = np.arange(1, kmax + 1)
    table = harmonic_table(k ** -rng.uniform(0.8, 1.4), rng)
    voice = osc(table, cycles(freq, sr, rng))
    breath = rng.uniform(0.01, 0.08)
    out = np.zeros(n, dtype=np.float32)
    bws = np.array([70.0, 100.0, 140.0]) * rng.uniform(0.8, 1.4)
    for start, length in segments:
        v0, v1 = VOWELS[rng.integers(len(VOWELS), size=2)]
        f0s, f1s = v0 * tract, v1 * tract
        keep = f1s < 0.45 * sr
        src = voice[start:start + length] + breath * rng.standard_normal(length, dtype=np.float32)
        glide = np.linspace(0.0, 1.0, length, dtype=np.float32)
        glide = glide * glide * (3 - 2 * glide)
        y = (1 - glide) * sosfilt(resonators(f0s[keep], bws[keep], sr), src) \
            + glide * sosfilt(resonators(f1s[keep], bws[keep], sr), src)
        y *= ar_env(length, sr, rng.uniform(0.015, 0.04), rng.uniform(0.03, 0.08))
        if rng.random() < 0.5:  # consonant: a noise burst (fricative or plosive release)
            c_len = min(length, int(rng.uniform(0.03, 0.1) * sr))
            fc = logu(rng, 2500.0, min(7000.0, 0.42 * sr))
            burst = sosfilt(resonators([fc], [rng.uniform(800, 3000)], sr, bandpass=True),
                             rng.standard_normal(c_len, dtype=np.float32))
            burst *= np.linspace(1.0, 0.2, c_len, dtype=np.float32) * np.float32(rng.uniform(0.1, 0.5))
            y[:c_len] += burst * np.float32(np.abs(y).max() / max(np.abs(burst).max(), 1e-9))
        out[start:start + length] += y
    return out


