"""PaSST-lite: shapes, structured patchout, frame features, tokens_to_frames."""
import pytest
import torch

from matsed_lite.models.passt_lite import PaSSTLite, tokens_to_frames
from matsed_lite.presets import get_preset


def tiny(**kw):
    torch.manual_seed(0)
    args = dict(n_mels=64, max_frames=500, dim=32, depth=3, heads=2, n_classes=10,
                patchout_time=10, patchout_freq=1)
    args.update(kw)
    return PaSSTLite(**args)


@pytest.mark.parametrize("frames,t_patches", [(500, 49), (256, 25), (333, 32), (17, 1)])
def test_shapes_full_clips_chunks_and_odd_lengths(frames, t_patches):
    m = tiny().eval()
    mel = torch.randn(2, 64, frames)
    assert m(mel).shape == (2, 10)
    assert m.tokens(mel).shape == (2, 5, t_patches, 32)
    assert m.tokens(mel, block=1).shape == (2, 5, t_patches, 32)
    assert m.frame_features(mel).shape == (2, frames, 32)
    assert m.clip_embedding(mel).shape == (2, 32)


def test_shorter_than_a_patch_and_too_long():
    m = tiny().eval()
    assert m.frame_features(torch.randn(1, 64, 10)).shape == (1, 10, 32)
    with pytest.raises(ValueError, match="max_frames"):
        m(torch.randn(1, 64, 501))
    with pytest.raises(ValueError):
        m(torch.randn(1, 40, 100))
    with pytest.raises(ValueError, match="block"):
        m.tokens(torch.randn(1, 64, 100), block=4)


def test_from_preset():
    p = get_preset("cpu")
    m = PaSSTLite.from_preset(p, n_classes=10).eval()
    assert m.feature_block == p.encoder_feature_block == 5
    assert (m.n_freq, m.n_time_max) == (5, 49)
    mel = torch.randn(1, p.n_mels, p.n_frames)
    assert m.frame_features(mel).shape == (1, p.context_frames, p.encoder_dim)
    assert p.context_frames == 250 and m.frames_per_token == 5
    m.frames_per_token = 10  # the paper's x10: back at the mel frame rate
    assert m.frame_features(mel).shape == (1, p.n_frames, p.encoder_dim)


def _count_tokens(m, mel):
    counts = []
    h = m.blocks[0].register_forward_pre_hook(lambda mod, args: counts.append(args[0].shape[1]))
    m(mel)
    h.remove()
    return counts[0]


def test_patchout_only_in_training_and_by_whole_stripes():
    m = tiny()
    mel = torch.randn(2, 64, 500)
    m.train()
    assert _count_tokens(m, mel) == 2 + (5 - 1) * (49 - 10)
    assert m.tokens(mel, patchout=True).shape == (2, 4, 39, 32)
    assert m.tokens(mel).shape == (2, 5, 49, 32)        # frame features never drop stripes
    m.eval()
    assert _count_tokens(m, mel) == 2 + 5 * 49
    assert m.tokens(mel, patchout=True).shape == (2, 5, 49, 32)
    # Whole stripes: every kept patch is some full-grid patch (i, j) with i fixed
    # per kept row and j fixed per kept column, both increasing.
    m.train()
    full = m._grid(mel, patchout=False)[0]          # (D, 5, 49)
    kept = m._grid(mel, patchout=True)[0]           # (D, 4, 39)
    flat = full.flatten(1).T                        # (5*49, D)
    where = torch.cdist(kept.flatten(1).T, flat).argmin(dim=1).view(4, 39)
    rows, cols = where // 49, where % 49
    assert torch.equal(kept, full[:, rows[:, 0]][:, :, cols[0]])
    assert (rows == rows[:, :1]).all() and (cols == cols[:1]).all()
    assert (rows[1:, 0] > rows[:-1, 0]).all() and (cols[0, 1:] > cols[0, :-1]).all()
    # Short chunks keep at least one column.
    assert m.tokens(torch.randn(1, 64, 40), patchout=True).shape[2] == 1


def test_eval_mode_is_deterministic_training_is_not():
    m = tiny()
    mel = torch.randn(2, 64, 500)
    m.eval()
    assert torch.equal(m(mel), m(mel))
    assert torch.equal(m.frame_features(mel), m.frame_features(mel))
    m.train()
    torch.manual_seed(1)
    a = m(mel)
    torch.manual_seed(2)
    assert not torch.allclose(a, m(mel))


def test_tokens_to_frames_hand_example():
    # Constant over 3 frequency patches; channel 0 = t, channel 1 = 2t for t = 0..3.
    t = torch.arange(4.0)
    tok = torch.stack([t, 2 * t], dim=-1)[None, None].expand(1, 3, 4, 2)
    out = tokens_to_frames(tok, n_frames=45, frames_per_token=10)
    assert out.shape == (1, 45, 2)
    x = out[0, :, 0]
    # align_corners=False: output i samples source position (i + 0.5) / 10 - 0.5,
    # clamped at 0; the repeated last step keeps the end flat at 3.
    assert torch.allclose(x[:5], torch.zeros(5))
    assert x[5].item() == pytest.approx(0.05)
    assert x[14].item() == pytest.approx(0.95)
    assert x[25].item() == pytest.approx(2.05)
    assert x[34].item() == pytest.approx(2.95)
    assert torch.allclose(x[35:], torch.full((10,), 3.0))
    assert torch.allclose(out[0, :, 1], 2 * x)
    # Longer than (T' + 1) * stride: padded by repeating the last frame.
    long = tokens_to_frames(tok, n_frames=60, frames_per_token=10)
    assert long.shape == (1, 60, 2)
    assert torch.allclose(long[0, :45], out[0])
    assert torch.allclose(long[0, 50:, 0], torch.full((10,), 3.0))
    # Five frames per token: the same line sampled at half the rate.
    half = tokens_to_frames(tok, n_frames=20, frames_per_token=5)[0, :, 0]
    # output i samples token position (i + 0.5) / 5 - 0.5
    assert half[2].item() == pytest.approx(0.0, abs=1e-6) and half[3].item() == pytest.approx(0.2)
    assert torch.allclose(half[17:], torch.full((3,), 3.0))
    # PaSST-S geometry: 99 time tokens -> 1000 frames.
    assert tokens_to_frames(torch.randn(2, 12, 99, 8), 1000).shape == (2, 1000, 8)
    with pytest.raises(ValueError):
        tokens_to_frames(torch.randn(2, 99, 8), 1000)


def test_frame_features_use_the_feature_block_and_frame_norm():
    m = tiny(depth=3).eval()
    m.feature_block = 2
    mel = torch.randn(1, 64, 256)
    expected = tokens_to_frames(m.frame_norm(m.tokens(mel, block=2)), 256)
    assert torch.allclose(m.frame_features(mel), expected)
    assert not torch.allclose(m.frame_features(mel, block=3), expected)


def test_patchout_keep_drops_whole_stripes():
    from matsed_lite.models.passt_lite import patchout_keep

    g = torch.Generator().manual_seed(0)
    rows, cols = patchout_keep(5, 49, 1, 10, generator=g)
    assert rows.tolist() == sorted(rows.tolist()) and len(rows) == 4 and len(set(rows.tolist())) == 4
    assert len(cols) == 39 and cols.max() < 49
    rows, cols = patchout_keep(5, 3, 1, 10)
    assert len(cols) == 1  # a short chunk keeps at least one column
    rows, cols = patchout_keep(5, 49, 0, 0)
    assert rows.tolist() == list(range(5)) and cols.tolist() == list(range(49))


def test_frames_and_clip_is_one_pass_equal_to_the_two_calls():
    torch.manual_seed(0)
    model = PaSSTLite(n_mels=64, max_frames=500, dim=32, depth=4, heads=2, n_classes=10).eval()
    model.feature_block = 3
    mel = torch.randn(2, 64, 500)
    with torch.no_grad():
        frames, clip = model.frames_and_clip(mel)
        torch.testing.assert_close(frames, model.frame_features(mel))
        torch.testing.assert_close(clip, model.clip_embedding(mel))
