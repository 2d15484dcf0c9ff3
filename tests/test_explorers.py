import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from matsed_lite.course.explorers import attention_explorer, mask_explorer, plot_attention, plot_mask  # noqa: E402
from matsed_lite.training.masking import block_mask  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _maps(L=2, B=1, H=3, T=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, T, generator=g).softmax(-1) for _ in range(L)]


def _png(box) -> bytes:
    (entry,) = box.output.outputs
    return base64.b64decode(entry["data"]["image/png"])


def test_plot_attention_shows_map_and_query_row():
    maps = _maps()
    fig = plot_attention(maps, layer=1, head=2, query=5, frame_hop=0.01)
    assert isinstance(fig, Figure)
    ax_map, ax_row = fig.axes[:2]
    np.testing.assert_allclose(ax_map.images[0].get_array(), maps[1][0, 2].numpy())
    np.testing.assert_allclose(ax_row.lines[0].get_ydata(), maps[1][0, 2, 5].numpy())
    np.testing.assert_allclose(ax_row.lines[0].get_xdata(), np.arange(20) * 0.01)
    assert "0.05 s" in ax_map.get_title()
    # (H, T, T) maps and frame units work too
    fig2 = plot_attention([m[0] for m in maps], 0, 0, 3)
    assert "frame 3" in fig2.axes[0].get_title()
    with pytest.raises(ValueError, match="query"):
        plot_attention(maps, 0, 0, 20)
    with pytest.raises(ValueError, match="head"):
        plot_attention(maps, 0, 3, 0)


def test_attention_explorer_redraws_on_slider_change():
    maps = _maps()
    box = attention_explorer(maps, frame_hop=0.01)
    assert set(box.sliders) == {"layer", "head", "query"}
    assert box.sliders["layer"].max == 1 and box.sliders["head"].max == 2
    assert box.sliders["query"].max == 19
    first_png, first_title = _png(box), box.figure.axes[0].get_title()
    assert first_png.startswith(b"\x89PNG")

    box.sliders["query"].value = 3
    assert box.figure.axes[0].get_title() != first_title
    np.testing.assert_allclose(box.figure.axes[1].lines[0].get_ydata(), maps[0][0, 0, 3].numpy())
    assert _png(box) != first_png

    box.sliders["head"].value = 2
    box.sliders["layer"].value = 1
    np.testing.assert_allclose(box.figure.axes[0].images[0].get_array(), maps[1][0, 2].numpy())
    assert len(box.output.outputs) == 1  # replaced, not appended
    assert plt.get_fignums() == []      # the explorer leaks no open figures


def test_plot_mask_image_and_title():
    mask = block_mask(3, 40, 0.5, 5, generator=torch.Generator().manual_seed(0))
    fig = plot_mask(mask, frame_hop=0.01)
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (3, 40)
    assert "50.0%" in ax.get_title()
    assert plot_mask(mask, title="hello").axes[0].get_title() == "hello"


def test_mask_explorer_follows_sliders():
    box = mask_explorer(T=200, frame_hop=0.01, batch=2)
    assert set(box.sliders) == {"ratio", "block", "seed"}
    img = box.figure.axes[0].images[0].get_array()
    assert img.shape == (2, 200)
    assert "75.0%" in box.figure.axes[0].get_title()

    box.sliders["ratio"].value = 0.3
    assert "30.0%" in box.figure.axes[0].get_title()
    before = np.array(box.figure.axes[0].images[0].get_array())
    box.sliders["seed"].value = 7
    after = np.array(box.figure.axes[0].images[0].get_array())
    assert not np.array_equal(before, after)
    expected = block_mask(2, 200, 0.3, 10, generator=torch.Generator().manual_seed(7))
    np.testing.assert_array_equal(after.astype(bool), expected.numpy())

    box.sliders["block"].value = 30  # 7 blocks (the last one partial), 2 masked
    assert "blocks of 30" in box.figure.axes[0].get_title()
    assert plt.get_fignums() == []


def _fusion_inputs(T=40, D=6, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    glob, loc = torch.randn(T, D, generator=g), torch.randn(T, D, generator=g)
    scores = {lam: torch.rand(T, K, generator=g).numpy() for lam in (0.0, 0.5, 1.0)}
    return glob, loc, scores, ["a_b", "c", "d"]


def test_plot_fusion_draws_the_mix_and_the_scores():
    from matsed_lite.course.explorers import plot_fusion

    glob, loc, scores, classes = _fusion_inputs()
    fig = plot_fusion(glob, loc, scores[0.5], 0.25, classes, frame_hop=0.04)
    ax_f, ax_s = fig.axes[:2]
    np.testing.assert_allclose(ax_f.images[0].get_array(), (0.25 * loc + 0.75 * glob).numpy().T, rtol=1e-6)
    assert len(ax_s.lines) == 3 and "0.25" in ax_f.get_title()
    np.testing.assert_allclose(ax_s.lines[1].get_ydata(), scores[0.5][:, 1])
    assert len(fig.axes) == 3  # the colour bar
    with pytest.raises(ValueError, match="scores"):
        plot_fusion(glob, loc, scores[0.5][:, :2], 0.5, classes, 0.04)


def test_fusion_explorer_follows_lambda():
    from matsed_lite.course.explorers import fusion_explorer

    glob, loc, scores, classes = _fusion_inputs()
    box = fusion_explorer(glob, loc, scores, classes, frame_hop=0.04)
    assert list(box.sliders["lam"].options) == [0.0, 0.5, 1.0] and box.sliders["lam"].value == 0.5
    first = _png(box)
    box.sliders["lam"].value = 1.0
    np.testing.assert_allclose(box.figure.axes[0].images[0].get_array(), loc.numpy().T, rtol=1e-6)
    np.testing.assert_allclose(box.figure.axes[1].lines[0].get_ydata(), scores[1.0][:, 0])
    assert _png(box) != first and plt.get_fignums() == []


def test_operating_point_plot_and_explorer():
    from matsed_lite.course.explorers import operating_point_explorer, plot_operating_point

    classes = ["x", "y"]
    sc = np.zeros((50, 2), np.float32)
    sc[10:20, 0] = 0.8
    sc[30:35, 1] = 0.4
    roc = (np.array([0.2, 0.6, 0.9]), np.array([0.0, 20.0, 80.0]))
    pts = {0.3: {"x": (40.0, 0.9), "y": (30.0, 0.7)}, 0.5: {"x": (10.0, 0.6), "y": (5.0, 0.2)}}
    fig = plot_operating_point(sc, classes, 0.1, 0.5, roc, pts[0.5], truth=[(1.0, 2.0, "x")])
    ax_e, ax_s, ax_r = fig.axes
    assert len(ax_e.patches) == 2            # one event decoded at 0.5 (x), one true event
    assert "1 events" in ax_e.get_title()
    star = [l for l in ax_r.lines if l.get_marker() == "*"][0]
    assert star.get_xdata()[0] == pytest.approx(7.5) and star.get_ydata()[0] == pytest.approx(0.4)
    plt.close(fig)

    box = operating_point_explorer({"median": sc, "max": sc * 0.5}, {"median": roc, "max": roc},
                                   {"median": pts, "max": pts}, classes, 0.1)
    assert box.sliders["threshold"].value == 0.5
    assert "1 events" in box.figure.axes[0].get_title()
    box.sliders["threshold"].value = 0.3
    assert "2 events" in box.figure.axes[0].get_title()
    box.sliders["post"].value = "max"          # scores halved: only x (0.4) survives 0.3
    assert "1 events" in box.figure.axes[0].get_title() and "max" in box.figure.axes[0].get_title()
    assert plt.get_fignums() == []
