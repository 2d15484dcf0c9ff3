"""Augmentations: shapes, labels follow the audio, dB arithmetic, seeding, identities."""
import math

import numpy as np
import pytest
import torch

from matsed_lite.training.augment import (db_to_logmel_units, filter_augment, frequency_warp, mixup,
                                 random_time_roll, time_roll)
from matsed_lite.data.features import LogMel


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_time_roll_moves_labels_with_the_event():
    B, M, T, K = 2, 8, 100, 3
    x = torch.zeros(B, M, T)
    y = torch.zeros(B, T, K)
    x[:, :, 10:20] = 1.0
    y[:, 10:20, 1] = 1.0
    xs, ys = time_roll(x, y, [5, -7])
    assert xs.shape == x.shape and ys.shape == y.shape
    assert torch.equal(xs[0, 0].nonzero().ravel(), torch.arange(15, 25))
    assert torch.equal(ys[0, :, 1].nonzero().ravel(), torch.arange(15, 25))
    assert torch.equal(ys[1, :, 1].nonzero().ravel(), torch.arange(3, 13))
    # Wrap-around keeps the clip length and the event.
    xs, ys = time_roll(x, y, 95)
    assert torch.equal(ys[0, :, 1].nonzero().ravel(), torch.tensor([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]))
    assert x[:, :, 10:20].sum() == 2 * M * 10  # input untouched


def test_time_roll_coarse_labels_move_by_the_same_time():
    x = torch.zeros(1, 4, 100)
    y = torch.zeros(1, 25, 2)   # 4x coarser (a CRNN's rate)
    y[0, 5, 0] = 1.0
    _, ys = time_roll(x, y, 8)
    assert ys[0, 7, 0] == 1.0 and ys.sum() == 1.0


def test_random_time_roll_seeded_and_identity():
    x = torch.randn(4, 6, 50)
    y = torch.rand(4, 50, 3)
    a = random_time_roll(x, y, 9.0, _gen(1))
    b = random_time_roll(x, y, 9.0, _gen(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2])
    assert a[2].shape == (4,) and a[2].abs().max() > 0
    x0, y0, s0 = random_time_roll(x, y, 0.0, _gen(1))
    assert torch.equal(x0, x) and torch.equal(y0, y) and (s0 == 0).all()
    assert random_time_roll(x, None, 5.0, _gen(2))[1] is None


def test_mixup_soft_labels_are_the_convex_combination():
    g = _gen(3)
    x = torch.randn(6, 5, 20)
    strong = (torch.rand(6, 20, 4) > 0.5).float()
    weak = strong.amax(1)
    r = mixup(x, strong, weak, alpha=10.0, beta=0.5, generator=g)
    c, p = r.c, r.perm
    assert 0 < c < 1 and sorted(p.tolist()) == list(range(6))
    assert torch.allclose(r.x, c * x + (1 - c) * x[p])
    assert torch.allclose(r.strong, c * strong + (1 - c) * strong[p])
    assert torch.allclose(r.weak, c * weak + (1 - c) * weak[p])
    assert r.strong.min() >= 0 and r.strong.max() <= 1
    r2 = mixup(x, strong, weak, alpha=10.0, beta=0.5, generator=_gen(3))
    assert r2.c == c and torch.equal(r2.perm, p)
    # Beta(10, 0.5) puts c near 1 (MAT-SED): the mean is 10 / 10.5.
    cs = [mixup(x, alpha=10.0, beta=0.5, generator=_gen(s)).c for s in range(200)]
    assert abs(np.mean(cs) - 10 / 10.5) < 0.03
    assert mixup(x, generator=_gen(0)).strong is None


def test_db_to_logmel_units_matches_a_scaled_waveform():
    lm = LogMel("smoke")
    wav = torch.randn(16000, generator=_gen(4)) * 0.1
    g_db = 6.0
    a = lm(wav)
    b = lm(wav * 10 ** (g_db / 20))
    mel = torch.exp(a * 5 - 4.5) - 1e-5
    loud = mel > 0.1   # four decades above the 1e-5 floor
    assert loud.float().mean() > 0.5
    diff = (b - a)[loud]
    assert torch.allclose(diff, torch.full_like(diff, db_to_logmel_units(g_db)), atol=1e-4)
    assert db_to_logmel_units(10.0) == pytest.approx(math.log(10) / 5)
    # One band spanning everything = the same gain on the waveform.
    f = filter_augment(a[None], db_range=(g_db, g_db), n_bands=(1, 1), generator=_gen(0))[0]
    assert torch.allclose(f[loud], b[loud], atol=1e-4)


def test_filter_augment_bands_and_range():
    mel = torch.zeros(8, 64, 30)
    out = filter_augment(mel, generator=_gen(5))
    assert out.shape == mel.shape
    lo, hi = db_to_logmel_units(-4.5), db_to_logmel_units(6.0)
    assert out.min() >= lo - 1e-6 and out.max() <= hi + 1e-6
    for b in range(8):
        col = out[b, :, 0]
        assert torch.equal(out[b], col[:, None].expand(-1, 30))   # constant in time
        n = len(torch.unique_consecutive(col))
        assert 1 <= n <= 4    # 2-4 bands (two bands may draw the same gain: never here)
        runs = torch.unique_consecutive(col, return_counts=True)[1]
        assert runs.min() >= 4
    assert torch.equal(out, filter_augment(mel, generator=_gen(5)))
    assert torch.equal(filter_augment(mel + 1.0, db_range=(0, 0), generator=_gen(5)), mel + 1.0)


def test_frequency_warp_identity_seeded_and_shape():
    mel = torch.randn(3, 64, 40)
    assert torch.equal(frequency_warp(mel, 0.0, _gen(0)), mel)
    a = frequency_warp(mel, 0.1, _gen(6))
    assert a.shape == mel.shape and not torch.equal(a, mel)
    assert torch.equal(a, frequency_warp(mel, 0.1, _gen(6)))
    # Interpolation stays within the range of the input.
    assert a.min() >= mel.min() - 1e-6 and a.max() <= mel.max() + 1e-6
    # A linear ramp in frequency stays monotonic.
    ramp = torch.arange(64.0)[None, :, None].expand(2, 64, 5)
    w = frequency_warp(ramp, 0.2, _gen(7))
    assert (w[:, 1:] - w[:, :-1] >= -1e-6).all()
    with pytest.raises(ValueError):
        frequency_warp(mel[0], 0.1)
