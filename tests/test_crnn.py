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
    small = CRNN.from_preset("cpu", 10, geometry="dcase", activation="glu")
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


def test_frequency_pools_spread_the_halvings_over_the_blocks():
    # 7 blocks: the baseline's x2 per block (64 mels: the last block keeps its bin)
    assert frequency_pools(128, 7) == ((2, 2), (2, 2)) + ((1, 2),) * 5
    assert frequency_pools(64, 7) == ((2, 2), (2, 2)) + ((1, 2),) * 4 + ((1, 1),)
    # fewer blocks take more than one halving each, earlier blocks first
    assert frequency_pools(64, 4, (2, 1, 1, 1)) == ((2, 4), (1, 4), (1, 2), (1, 2))
    assert frequency_pools(128, 4, (1, 1, 1, 1)) == ((1, 4), (1, 4), (1, 4), (1, 2))
    # floor pooling: 1000 bins end at one (1000/4/4/2/2/2/2/2 floored)
    pools = frequency_pools(1000, 7)
    f = 1000
    for _, pf in pools:
        f //= pf
    assert f == 1


def test_small_geometry_from_preset():
    m = CRNN.from_preset("cpu", 10, geometry="small").eval()
    assert m.filters == (16, 32, 64, 128) and m.time_downsampling == 2
    assert m.pools == ((2, 4), (1, 4), (1, 2), (1, 2)) and m.dropout.p == 0.1
    assert m.activation == "relu"                          # the preset's activation
    assert m(torch.randn(2, 64, 500))["frame_probs"].shape == (2, 250, 10)
    # the preset's own geometry is the default: small at the lite presets, the
    # baseline's at paper
    assert CRNN.from_preset("paper", 10).filters == (16, 32, 64, 128, 128, 128, 128)
    assert CRNN.from_preset("cpu", 10).config()["filters"] == [16, 32, 64, 128]
    assert CRNN.from_preset("cpu", 10, geometry="dcase").time_downsampling == 4
    with pytest.raises(ValueError, match="unknown CRNN geometry 'huge'; choose from dcase, small"):
        CRNN.from_preset("cpu", 10, geometry="huge")


def test_cli_geometry_choices_are_the_geometries():
    from matsed_lite.cli import CRNN_GEOMETRY_NAMES
    from matsed_lite.models.crnn import CRNN_GEOMETRIES

    assert tuple(CRNN_GEOMETRIES) == CRNN_GEOMETRY_NAMES


def test_bad_inputs():
    with pytest.raises(ValueError, match="1 blocks cannot reduce 64 mel bins"):
        frequency_pools(64, 1, (1,))
    with pytest.raises(ValueError, match="2 time pools for 3 blocks"):
        frequency_pools(64, 3, (2, 1))
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


def test_activation_option_and_presets():
    relu, glu = CRNN(64, 10, activation="relu"), CRNN(64, 10, activation="glu")
    # The GLU's 1x1 channel maps are the only weights the ReLU version lacks.
    glu_extra = sum(p.numel() for n, p in glu.named_parameters() if ".linear." in n)
    assert glu_extra == sum(c * c + c for c in (16, 32, 64, 128, 128, 128, 128))
    assert glu.parameter_count() - relu.parameter_count() == glu_extra
    x = torch.randn(2, 64, 100)
    out = relu.eval()(x)["frame_probs"]
    assert out.shape == (2, 25, 10) and torch.isfinite(out).all()
    assert CRNN.from_preset("cpu", 10).activation == "relu"
    assert CRNN.from_preset("paper", 10).activation == "glu"
    assert CRNN.from_preset("cpu", 10, activation="glu").activation == "glu"
    with pytest.raises(ValueError, match="activation must be 'glu' or 'relu', got 'tanh'"):
        CRNN(64, 10, activation="tanh")


def test_checkpoint_round_trip_keeps_the_activation(tmp_path):
    from matsed_lite.models.checkpoints import load_model, save_model
    from matsed_lite.presets import get_preset

    torch.manual_seed(0)
    m = CRNN.from_preset("cpu", 3).eval()
    best = {"teacher": None, "model": m.state_dict(), "epoch": 1, "metrics": {}}
    save_model(tmp_path, "crnn", m, best, ["a", "b", "c"], get_preset("cpu"), "crnn", None, {})
    back, info = load_model(tmp_path)
    assert back.activation == "relu" and info["crnn_activation"] == "relu"
    x = torch.randn(1, 64, 120)
    torch.testing.assert_close(back(x)["frame_probs"], m(x)["frame_probs"])
    # A model saved before the architecture and activation were recorded is the DCASE GLU CRNN.
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    g = CRNN.from_preset("cpu", 3, geometry="dcase", activation="glu")
    ck.pop("crnn_activation")
    ck.pop("crnn_config")
    ck["model"] = ck["student"] = g.state_dict()
    torch.save(ck, tmp_path / "model.pt")
    assert load_model(tmp_path)[0].activation == "glu"


def test_checkpoint_records_the_geometry(tmp_path):
    """A small-geometry model loads as itself whatever the preset's geometry is; a
    broken crnn_config is named."""
    from matsed_lite.files import CheckpointError
    from matsed_lite.models.checkpoints import load_model, save_model
    from matsed_lite.presets import get_preset

    torch.manual_seed(0)
    m = CRNN.from_preset("cpu", 3, geometry="small").eval()
    best = {"teacher": None, "model": m.state_dict(), "epoch": 1, "metrics": {}}
    save_model(tmp_path, "crnn", m, best, ["a", "b", "c"], get_preset("cpu"), "crnn", None, {})
    back, info = load_model(tmp_path)
    assert back.filters == (16, 32, 64, 128) and back.time_downsampling == 2
    assert info["crnn_config"]["pools"] == [[2, 4], [1, 4], [1, 2], [1, 2]]
    assert info["frame_hop"] == pytest.approx(0.04)
    x = torch.randn(1, 64, 120)
    torch.testing.assert_close(back(x)["frame_probs"], m(x)["frame_probs"])
    ck = torch.load(tmp_path / "model.pt", weights_only=True)
    ck["crnn_config"]["filters"] = [16, 32]               # 2 filters for 4 pools
    torch.save(ck, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match=r"model\.pt: its crnn_config does not build a CRNN "
                                              r"\(4 pools for 2 conv blocks\)"):
        load_model(tmp_path)
