"""The DCASE baseline CRNN: shapes, probabilities, attention pooling, presets."""
import pytest
import torch

from matsed_lite.models.crnn import CRNN, frequency_pools


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CRNN(64, 10).eval()


def test_shapes_t500(model):
    out = model(torch.randn(2, 64, 500))
    assert out["frame_logits"].shape == (2, 125, 10)
    assert out["frame_probs"].shape == (2, 125, 10)
    assert out["clip_probs"].shape == (2, 10)
    assert "at_probs" not in out
    assert model.time_downsampling == 4


@pytest.mark.parametrize("T", [37, 501, 123])
def test_odd_lengths(model, T):
    out = model(torch.randn(1, 64, T))
    assert out["frame_probs"].shape == (1, T // 4, 10)


def test_probabilities_and_weak_is_a_time_average(model):
    out = model(torch.randn(3, 64, 200))
    p, w = out["frame_probs"], out["clip_probs"]
    assert torch.allclose(p, torch.sigmoid(out["frame_logits"]))
    assert p.min() >= 0 and p.max() <= 1
    assert (w >= p.amin(1) - 1e-6).all() and (w <= p.amax(1) + 1e-6).all()
    m = CRNN(64, 10, attention_softmax="time").eval()
    o = m(torch.randn(2, 64, 100))
    assert (o["clip_probs"] <= o["frame_probs"].amax(1) + 1e-6).all()
    assert (o["clip_probs"] >= o["frame_probs"].amin(1) - 1e-6).all()


def test_instance_normalisation_removes_gain_and_offset(model):
    x = torch.randn(2, 64, 100)
    a = model(x)["frame_probs"]
    b = model(3.0 * x + 1.5)["frame_probs"]
    assert torch.allclose(a, b, atol=1e-5)
    n = CRNN.normalise(x)
    assert torch.allclose(n.flatten(1).min(1).values, torch.zeros(2))
    assert torch.allclose(n.flatten(1).max(1).values, torch.ones(2))


def test_from_preset_and_parameter_count():
    small = CRNN.from_preset("cpu", 10)
    paper = CRNN.from_preset("paper", 10)
    assert small.pools[-1] == (1, 1) and all(f == 2 for _, f in small.pools[:6])
    assert all(f == 2 for _, f in paper.pools)
    # Same layers either way (pooling has no weights): the baseline's ~1.1 M.
    n = small.parameter_count()
    assert n == paper.parameter_count()
    print(f"CRNN parameters: {n:,}")
    assert 0.8e6 < n < 1.5e6
    out = paper.eval()(torch.randn(1, 128, 1000))
    assert out["frame_probs"].shape == (1, 250, 10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="cannot reduce"):
        frequency_pools(1000)
    with pytest.raises(ValueError, match="not 1"):
        CRNN(64, 10, pools=((2, 2),) * 7)
    with pytest.raises(ValueError, match=r"\(B, 64, T\)"):
        CRNN(64, 10)(torch.randn(1, 128, 100))


def test_trains_one_step():
    torch.manual_seed(0)
    m = CRNN(64, 3)
    x, y = torch.randn(4, 64, 80), (torch.rand(4, 20, 3) > 0.5).float()
    out = m(x)
    bce = torch.nn.functional.binary_cross_entropy
    loss = bce(out["frame_probs"], y) + bce(out["clip_probs"], y.amax(1))
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())
