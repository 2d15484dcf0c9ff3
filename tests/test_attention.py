import pytest
import torch

from matsed_lite.models.attention import (MultiHeadSelfAttention, rel_shift, rel_shift_view,
                                   relative_distances, relative_position_scores_explicit,
                                   sinusoidal_embedding)
from matsed_lite.models.matsed import ContextNetwork, default_heads

DIM = 32


def _x(B=2, T=11, D=DIM, seed=0):
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("T", [1, 2, 7, 16, 33])
def test_rel_shift_puts_distance_i_minus_j_at_i_j(T):
    # Column c of the input holds distance T-1-c; after the shift, (i, j) must hold i - j.
    x = relative_distances(T).float().expand(3, T, 2 * T - 1)
    i = torch.arange(T)
    expected = (i[:, None] - i[None, :]).float().expand(3, T, T)
    assert torch.equal(rel_shift(x), expected)
    assert torch.equal(rel_shift_view(x), expected)


@pytest.mark.parametrize("T,H", [(1, 1), (5, 2), (8, 3), (13, 4)])
def test_rel_shift_matches_explicit_position_scores(T, H):
    g = torch.Generator().manual_seed(T)
    q = torch.randn(2, H, T, 6, generator=g)
    r = torch.randn(H, 2 * T - 1, 6, generator=g)
    ref = relative_position_scores_explicit(q, r)
    torch.testing.assert_close(rel_shift(q @ r.transpose(-1, -2)), ref)
    torch.testing.assert_close(rel_shift_view(q @ r.transpose(-1, -2)), ref)


def test_rel_shift_view_backward_equals_rel_shift_backward():
    x = torch.randn(2, 9, 17, requires_grad=True)
    g = torch.randn(2, 9, 9)
    a, = torch.autograd.grad(rel_shift(x), x, g)
    b, = torch.autograd.grad(rel_shift_view(x), x, g)
    assert torch.equal(a, b)


def test_layer_position_term_matches_explicit():
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(DIM, 4)
    q = torch.randn(2, 4, 9, DIM // 4)
    r = m.distance_embeddings(9)
    ref = relative_position_scores_explicit((q + m.v[None, :, None]) / (DIM // 4) ** 0.5, r)
    torch.testing.assert_close(m.position_scores(q), ref)


def test_sinusoidal_embedding():
    e = sinusoidal_embedding(torch.tensor([-3, 0, 5]), 8)
    assert e.shape == (3, 8)
    assert torch.equal(e[1], torch.tensor([0.0] * 4 + [1.0] * 4))  # sin 0 | cos 0
    with pytest.raises(ValueError, match="dim"):
        sinusoidal_embedding(torch.arange(3), 7)


@pytest.mark.parametrize("pos", ["relative", "absolute", "none"])
@pytest.mark.parametrize("T", [1, 7, 12])
def test_sdpa_path_equals_explicit_path(pos, T):
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(DIM, 4, pos=pos)
    x = _x(T=T)
    pad = torch.zeros(2, T, dtype=torch.bool)
    pad[1, : T // 2] = True
    for mask in (None, pad):
        fast = m(x, mask)
        slow, attn = m(x, mask, return_attention=True)
        assert fast.shape == slow.shape == (2, T, DIM)
        assert attn.shape == (2, 4, T, T)
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, 4, T))


def test_padded_keys_get_exactly_zero_weight():
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(DIM, 4)
    pad = torch.zeros(2, 10, dtype=torch.bool)
    pad[0, :3] = True
    pad[1, 7:] = True
    _, attn = m(_x(T=10), pad, return_attention=True)
    assert torch.all(attn[0, :, :, :3] == 0) and torch.all(attn[1, :, :, 7:] == 0)
    assert torch.all(attn[0, :, :, 3:] > 0)


def test_all_padding_row_is_finite():
    m = MultiHeadSelfAttention(DIM, 4)
    out = m(_x(T=5), torch.ones(2, 5, dtype=torch.bool))
    assert torch.isfinite(out).all()


def test_gradients_reach_u_v_and_w_r():
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(DIM, 4)
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[0, :2] = True
    for return_attention in (False, True):
        m.zero_grad(set_to_none=True)
        out = m(_x(T=9), pad, return_attention=return_attention)
        out = out[0] if return_attention else out
        (out ** 2).sum().backward()
        for p in (m.u, m.v, m.w_r.weight):
            assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("k", [1, 4, 9])
def test_translation_equivariance_relative_not_absolute(k):
    """Prepend k padding frames: a relative network's outputs on the real frames
    do not move, because real frames see only real keys at unchanged distances.
    An absolute network's do: every real frame now carries a different code."""
    T = 13
    x = _x(B=1, T=T)
    junk = torch.randn(1, k, DIM)  # whatever is in the padding must not matter
    shifted = torch.cat([junk, x], dim=1)
    pad = torch.zeros(1, k + T, dtype=torch.bool)
    pad[:, :k] = True
    for pos, invariant in (("relative", True), ("absolute", False)):
        torch.manual_seed(0)
        net = ContextNetwork(DIM, depth=2, heads=4, pos=pos).eval()
        ref = net(x)
        moved = net(shifted, key_padding_mask=pad)[:, k:]
        same = torch.allclose(ref, moved, atol=1e-5)
        assert same == invariant, (pos, k, (ref - moved).abs().max().item())


def test_permutation_equivariance_only_without_positions():
    x = _x(B=2, T=10)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(1))
    for pos, equivariant in (("none", True), ("relative", False), ("absolute", False)):
        torch.manual_seed(0)
        net = ContextNetwork(DIM, depth=2, heads=4, pos=pos).eval()
        same = torch.allclose(net(x)[:, perm], net(x[:, perm]), atol=1e-5)
        assert same == equivariant, pos


@pytest.mark.parametrize("pos", ["relative", "absolute", "none"])
def test_context_network_shapes_and_maps(pos):
    net = ContextNetwork(DIM, depth=3, heads=2, pos=pos, mlp_ratio=2)
    x = _x(T=7)
    assert net(x).shape == (2, 7, DIM)
    out, maps = net(x, return_attention=True)
    assert out.shape == (2, 7, DIM) and len(maps) == 3
    assert all(m.shape == (2, 2, 7, 7) for m in maps)
    torch.testing.assert_close(out, net(x), atol=1e-5, rtol=1e-5)


def test_default_heads():
    assert default_heads(768) == 12
    assert default_heads(32) == 1
    assert default_heads(200) == 2  # 200 // 64 = 3 does not divide 200
    assert ContextNetwork(128).heads == 2


def test_error_messages_name_the_argument():
    with pytest.raises(ValueError, match="pos"):
        MultiHeadSelfAttention(DIM, 4, pos="rotary")
    with pytest.raises(ValueError, match="pos"):
        ContextNetwork(DIM, pos="learned")
    with pytest.raises(ValueError, match="heads"):
        MultiHeadSelfAttention(DIM, 5)
    m = MultiHeadSelfAttention(DIM, 4)
    with pytest.raises(ValueError, match="x must be"):
        m(torch.randn(3, DIM))
    with pytest.raises(ValueError, match="x must be"):
        m(torch.randn(2, 5, DIM + 1))
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(torch.randn(2, 5, DIM), torch.zeros(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(torch.randn(2, 5, DIM), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="x must be"):
        ContextNetwork(DIM, heads=4)(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match=r"x must be \(\.\.\., T, 2T-1\)"):
        rel_shift(torch.randn(4, 4))


@pytest.mark.parametrize("pos", ["relative", "none"])
def test_runs_under_bfloat16_autocast(pos):
    net = ContextNetwork(DIM, depth=1, heads=4, pos=pos)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, :2] = True
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = net(_x(T=6), pad)
        slow, _ = net(_x(T=6), pad, return_attention=True)
    assert torch.isfinite(fast.float()).all()
    torch.testing.assert_close(fast.float(), slow.float(), atol=0.1, rtol=0.05)
