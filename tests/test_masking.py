import pytest
import torch

from matsed_lite.training.masking import (KEPT, RANDOM, TOKEN, UNCHANGED, MaskedFrames, bert_replace,
                                 block_mask, n_masked_blocks)


@pytest.mark.parametrize("T,block,ratio", [(1000, 10, 0.75), (500, 10, 0.75), (503, 10, 0.75),
                                           (97, 7, 0.5), (10, 10, 0.75), (64, 1, 0.3)])
def test_exact_count_of_whole_blocks(T, block, ratio):
    g = torch.Generator().manual_seed(0)
    m = block_mask(16, T, ratio, block, generator=g)
    n_blocks, n_masked = n_masked_blocks(T, ratio, block)
    assert m.shape == (16, T) and m.dtype == torch.bool
    padded = torch.nn.functional.pad(m, (0, n_blocks * block - T))
    blocks = padded.view(16, n_blocks, block)
    # block alignment: every block is all masked or all kept (partial last block included)
    last_len = T - (n_blocks - 1) * block
    full = blocks[:, :-1]
    assert torch.all(full.all(-1) | ~full.any(-1))
    last = blocks[:, -1, :last_len]
    assert torch.all(last.all(-1) | ~last.any(-1))
    assert torch.all(blocks.any(-1).sum(1) == n_masked)


def test_paper_numbers_and_partial_last_block():
    assert n_masked_blocks(1000, 0.75, 10) == (100, 75)  # the official code masks 76
    assert n_masked_blocks(503, 0.75, 10) == (51, 38)
    assert n_masked_blocks(300, 0.75, 10) == (30, 23)  # 22.5 rounds up
    with pytest.raises(ValueError, match="ratio"):
        n_masked_blocks(10, 1.5, 10)


def test_masks_differ_between_rows_and_are_seeded():
    m1 = block_mask(8, 500, generator=torch.Generator().manual_seed(1))
    m2 = block_mask(8, 500, generator=torch.Generator().manual_seed(1))
    m3 = block_mask(8, 500, generator=torch.Generator().manual_seed(2))
    assert torch.equal(m1, m2) and not torch.equal(m1, m3)
    assert len({tuple(r.tolist()) for r in m1}) == 8
    # Over many draws every block is masked about ratio of the time.
    freq = block_mask(4000, 200, 0.75, 10, torch.Generator().manual_seed(3)).float().mean(0)
    assert torch.allclose(freq, torch.full_like(freq, 0.75), atol=0.03)


def test_bert_replacement_proportions_and_contents():
    g = torch.Generator().manual_seed(0)
    B, T, D = 64, 500, 8
    x = torch.randn(B, T, D, generator=g)
    token = torch.full((D,), 7.0)
    mask = block_mask(B, T, 0.75, 10, g)
    out, codes = bert_replace(x, mask, token, generator=g)
    n = mask.sum().item()
    share = {k: ((codes == k).sum().item() / n) for k in (TOKEN, RANDOM, UNCHANGED)}
    assert share[TOKEN] == pytest.approx(0.8, abs=0.01)
    assert share[RANDOM] == pytest.approx(0.1, abs=0.01)
    assert share[UNCHANGED] == pytest.approx(0.1, abs=0.01)
    assert torch.equal(codes == KEPT, ~mask)
    assert torch.equal(out[~mask], x[~mask])
    assert torch.all(out[codes == TOKEN] == 7.0)
    assert torch.equal(out[codes == UNCHANGED], x[codes == UNCHANGED])
    # A random replacement is some frame of the batch (and rarely itself).
    flat = x.reshape(-1, D)
    rnd = out[codes == RANDOM]
    dists = torch.cdist(rnd, flat, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    assert torch.all(dists < 1e-6)


def test_mask_token_learns_and_module_shapes():
    m = MaskedFrames(dim=16)
    x = torch.randn(2, 50, 16)
    out, mask, codes = m(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and mask.shape == codes.shape == (2, 50)
    out.sum().backward()
    assert m.mask_token.grad is not None and m.mask_token.grad.abs().sum() > 0
    assert m.mask_token.detach().std() < 0.1  # initialised with std 0.02


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, T, D\)"):
        bert_replace(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool), torch.zeros(3))


def test_interpolation_repairs_linear_signals_and_holds_edges():
    from matsed_lite.training.masking import interpolate_masked, masked_mse

    T = 40
    ramp = torch.linspace(0, 1, T)[None, :, None].repeat(1, 1, 3)
    mask = torch.zeros(1, T, dtype=torch.bool)
    mask[0, 10:20] = True
    torch.testing.assert_close(interpolate_masked(ramp, mask), ramp)  # exact on a line
    mask_edge = torch.zeros(1, T, dtype=torch.bool)
    mask_edge[0, :5] = True
    mask_edge[0, -5:] = True
    filled = interpolate_masked(ramp, mask_edge)
    assert torch.all(filled[0, :5] == ramp[0, 5]) and torch.all(filled[0, -5:] == ramp[0, -6])
    # On a sine, masking one frame in ten is repaired far better than a block of ten.
    sine = torch.sin(torch.arange(200.0) / 6)[None, :, None]
    g = torch.Generator().manual_seed(0)
    frames = block_mask(1, 200, 0.5, 1, g)
    blocks = block_mask(1, 200, 0.5, 10, g)
    e_frames = masked_mse(interpolate_masked(sine, frames), sine, frames)
    e_blocks = masked_mse(interpolate_masked(sine, blocks), sine, blocks)
    assert e_blocks > 10 * e_frames
    with pytest.raises(ValueError, match="fully masked"):
        interpolate_masked(sine, torch.ones(1, 200, dtype=torch.bool))
    with pytest.raises(ValueError, match="no masked frames"):
        masked_mse(sine, sine, torch.zeros(1, 200, dtype=torch.bool))
