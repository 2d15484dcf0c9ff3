import pytest
import torch

from matsed_lite.models.matsed import MATSEDLite, ReconstructionHead, linear_softmax_pool


def test_linear_softmax_pool_hand_example_and_mask():
    p = torch.tensor([[[0.5], [1.0], [0.0]]])  # (1, 3, 1)
    # (0.25 + 1) / (0.5 + 1) = 0.8333
    assert linear_softmax_pool(p).item() == pytest.approx(1.25 / 1.5)
    mask = torch.tensor([[True, False, True]])
    assert linear_softmax_pool(p, mask).item() == pytest.approx(0.5)
    # never above the highest frame score, and all-zero frames give 0, not NaN
    x = torch.rand(4, 50, 3)
    assert torch.all(linear_softmax_pool(x) <= x.max(dim=1).values + 1e-6)
    assert linear_softmax_pool(torch.zeros(1, 5, 2)).eq(0).all()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MATSEDLite.from_preset("smoke", 10).eval()


def test_shapes_and_precomputed_frames(model):
    mel = torch.randn(2, 64, 500)
    with torch.no_grad():
        out = model(mel)
        frames = model.encoder.frame_features(mel)
        clip = model.encoder.clip_embedding(mel)
        again = model(frames=frames, clip_embedding=clip)
    # smoke: 5 context frames per 200 ms token -> 250 frames of 40 ms
    assert model.time_downsampling == 2
    assert out["frame_probs"].shape == (2, 250, 10) and out["at_probs"].shape == (2, 10)
    torch.testing.assert_close(out["frame_probs"], again["frame_probs"])
    torch.testing.assert_close(out["clip_probs"], linear_softmax_pool(out["frame_probs"]))


def test_temperature_divides_logits(model):
    mel = torch.randn(1, 64, 500)
    with torch.no_grad():
        a, b = model(mel), model(mel, temperature=0.5)
    torch.testing.assert_close(b["frame_logits"], 2 * a["frame_logits"])
    torch.testing.assert_close(b["at_logits"], 2 * a["at_logits"])


def test_padding_is_ignored_by_pooling(model):
    mel = torch.randn(1, 64, 500)
    pad = torch.zeros(1, 250, dtype=torch.bool)  # at the context frame rate
    pad[:, 150:] = True
    with torch.no_grad():
        out = model(mel, key_padding_mask=pad)
    torch.testing.assert_close(out["clip_probs"], linear_softmax_pool(out["frame_probs"][:, :150]))


def test_errors_and_reconstruction_head():
    with pytest.raises(ValueError, match="shipped PaSST-lite"):
        MATSEDLite.from_preset("paper", 10)
    with pytest.raises(ValueError, match="pass mel"):
        MATSEDLite.from_preset("smoke", 10)(frames=torch.zeros(1, 10, 128))
    head = ReconstructionHead(16)
    assert head(torch.zeros(2, 7, 16)).shape == (2, 7, 16)
