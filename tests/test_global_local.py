import pytest
import torch

from matsed_lite.models.global_local import (FusionWindows, GlobalLocalFusion, fused_features,
                                      local_features, window_starts)
from matsed_lite.models.passt_lite import load_pretrained_encoder


class PointwiseEncoder(torch.nn.Module):
    """Frame features that depend on each frame alone (mel bin means at the context
    rate): local windows must then reproduce the global features exactly."""

    stride, frames_per_token, dim = 10, 5, 3

    def __init__(self):
        super().__init__()
        self.calls = []

    def frame_features(self, mel):
        self.calls.append(tuple(mel.shape))
        n = mel.shape[-1] // 2
        x = mel[:, :3, 0:2 * n:2] + mel[:, :3, 1:2 * n:2]
        return x.transpose(1, 2)

    def frames_and_clip(self, mel):
        f = self.frame_features(mel)
        return f, f.mean(1)


@pytest.mark.parametrize("n,window,hop", [(500, 256, 16), (500, 256, 24), (1000, 512, 31),
                                          (300, 256, 100), (100, 256, 16), (256, 256, 16)])
def test_windows_cover_every_frame_and_end_flush(n, window, hop):
    starts = window_starts(n, window, hop)
    covered = torch.zeros(n, dtype=torch.int64)
    w = min(window, n)
    for s in starts:
        assert 0 <= s and s + w <= n
        covered[s:s + w] += 1
    assert bool((covered > 0).all())
    assert starts[-1] + w == n
    assert starts == sorted(set(starts))


def test_window_counts_known():
    assert window_starts(500, 256, 16) == list(range(0, 241, 16)) + [244]
    assert window_starts(1000, 512, 31)[-2:] == [465, 488]  # 488 = the tail the official code drops
    with pytest.raises(ValueError, match="hop"):
        window_starts(500, 256, 0)


def test_local_equals_global_for_a_pointwise_encoder_in_one_call():
    enc = PointwiseEncoder()
    mel = torch.randn(3, 8, 500)
    g = enc.frame_features(mel)
    enc.calls.clear()
    loc = local_features(enc, mel, 256, 16)
    assert enc.calls == [(3 * 17, 8, 256)]  # 16 hops + the flush window, one batched call
    torch.testing.assert_close(loc, g)
    # odd length: the flush window is moved onto a context frame; still every frame covered
    mel = torch.randn(2, 8, 333)
    torch.testing.assert_close(local_features(enc, mel, 256, 16), enc.frame_features(mel))


def test_overlap_add_averages_the_windows():
    class Offset(PointwiseEncoder):
        """Adds a different constant in every window: the average of the constants
        over the windows covering a frame is what overlap-add must produce."""

        def frame_features(self, mel):
            f = super().frame_features(mel)
            return f + torch.arange(f.shape[0], dtype=f.dtype)[:, None, None]

    enc = Offset()
    mel = torch.zeros(1, 8, 40)
    out = local_features(enc, mel, 20, 10)        # windows at 0, 10, 20 (mel frames)
    expect = torch.tensor([0.0] * 5 + [0.5] * 5 + [1.5] * 5 + [2.0] * 5)  # context frames
    torch.testing.assert_close(out[0, :, 0], expect)


def test_fused_is_the_convex_mix_and_lambda_zero_skips_windows():
    enc = load_pretrained_encoder("smoke")
    mel = torch.randn(2, 64, 500)
    with torch.no_grad():
        g, clip = enc.frames_and_clip(mel)
        loc = local_features(enc, mel, 256, 16)
        f5, c5 = fused_features(enc, mel, 0.5, 256, 16)
        f0, _ = fused_features(enc, mel, 0.0, 256, 16)
        f1, _ = fused_features(enc, mel, 1.0, 256, 16)
    assert loc.shape == g.shape == (2, 250, 128)
    torch.testing.assert_close(f5, 0.5 * loc + 0.5 * g)
    torch.testing.assert_close(c5, clip)
    torch.testing.assert_close(f0, g)
    torch.testing.assert_close(f1, loc)
    assert (loc - g).abs().mean() > 1e-3  # a 5 s window really sees something else
    with pytest.raises(ValueError, match="lambda"):
        fused_features(enc, mel, 1.5)
    with pytest.raises(ValueError, match="multiples of 2"):
        local_features(enc, mel, 255, 16)


def test_settings_scale_the_paper_durations():
    assert FusionWindows.for_preset("paper") == FusionWindows(512, 31, 49)
    assert FusionWindows.for_preset("cpu") == FusionWindows(256, 16, 24)
    f = GlobalLocalFusion.for_preset("cpu", when="train")
    assert f.describe() == {"lambda": 0.5, "window": 256, "hop": 24}
