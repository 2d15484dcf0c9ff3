"""Interactive explorers for the notebooks: attention maps, block masks, fusion weight, operating point.

Headless-safe pattern, used for every explorer in the course:

* a pure plotting function (arrays in, a matplotlib Figure out) that the
  notebook can also call directly and save, and that tests call;
* a thin ipywidgets explorer: sliders plus an ``Output`` whose ``outputs``
  are replaced by a PNG of the newly drawn figure on every change. The PNG is
  rendered here (not through ``display`` inside ``with output:``), so the
  explorer behaves the same in JupyterLab, under papermill and in a test with
  no kernel at all; no ``@interact``, no ipympl.

Each explorer returns a ``VBox`` with attributes ``sliders`` (name ->
slider), ``output``, ``redraw()`` and ``figure`` (the last Figure drawn, kept
closed so pyplot does not accumulate open figures).
"""
from __future__ import annotations

import base64
import io
from typing import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..evaluation.postprocessing import decode_events
from ..training.masking import block_mask

PNG_DPI = 80


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().float().cpu().numpy()
    return np.asarray(a)


def _as_layer_maps(maps) -> list[np.ndarray]:
    """List over layers of (H, T, T) arrays; a (B, H, T, T) entry gives its item 0."""
    if isinstance(maps, (torch.Tensor, np.ndarray)) and np.ndim(maps) in (3, 4):
        maps = [maps]
    out = []
    for i, m in enumerate(maps):
        m = _to_numpy(m)
        if m.ndim == 4:
            m = m[0]
        if m.ndim != 3 or m.shape[1] != m.shape[2]:
            raise ValueError(f"maps[{i}] must be (H, T, T) or (B, H, T, T), got {m.shape}")
        out.append(m)
    if not out:
        raise ValueError("maps is empty")
    return out


def plot_attention(maps, layer: int, head: int, query: int, frame_hop: float | None = None) -> Figure:
    """One head's T x T attention map with the query's row marked, and that
    row (where the query frame looks) as a curve over time below it.

    maps: list over layers of (H, T, T) (or (B, H, T, T): item 0 is shown),
    rows = queries, columns = keys. frame_hop in seconds puts times on the
    axes; without it they are frame indices."""
    maps = _as_layer_maps(maps)
    if not 0 <= layer < len(maps):
        raise ValueError(f"layer must be in [0, {len(maps) - 1}], got {layer}")
    H, T, _ = maps[layer].shape
    if not 0 <= head < H:
        raise ValueError(f"head must be in [0, {H - 1}], got {head}")
    if not 0 <= query < T:
        raise ValueError(f"query must be in [0, {T - 1}], got {query}")
    a = maps[layer][head]
    scale = frame_hop if frame_hop else 1.0
    unit = "s" if frame_hop else "frame"
    extent = (-0.5 * scale, (T - 0.5) * scale, (T - 0.5) * scale, -0.5 * scale)

    # A narrow third column holds the colour bar, so the two time axes line up.
    fig = plt.figure(figsize=(6, 7.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 1.2], width_ratios=[1, 0.03], wspace=0.05)
    ax_map = fig.add_subplot(grid[0, 0])
    ax_row = fig.add_subplot(grid[1, 0], sharex=ax_map)
    cax = fig.add_subplot(grid[0, 1])
    im = ax_map.imshow(a, aspect="auto", origin="upper", cmap="viridis", extent=extent,
                       interpolation="nearest")
    ax_map.axhline(query * scale, color="red", lw=1)
    ax_map.set_xlabel(f"key ({unit})")
    ax_map.set_ylabel(f"query ({unit})")
    fig.colorbar(im, cax=cax, label="weight")
    where = f"{query * frame_hop:.2f} s" if frame_hop else f"frame {query}"
    ax_map.set_title(f"layer {layer}, head {head}: query {where}")

    t = np.arange(T) * scale
    ax_row.plot(t, a[query], color="C0", lw=1)
    ax_row.axvline(query * scale, color="red", lw=1, ls="--")
    ax_row.set_ylim(bottom=0)
    ax_row.set_xlabel(f"key ({unit})")
    ax_row.set_ylabel("weight")
    ax_row.set_title(f"where query {where} looks", fontsize=9)
    fig.subplots_adjust(left=0.12, right=0.88, top=0.95, bottom=0.07, hspace=0.3)
    return fig


def plot_mask(mask, frame_hop: float | None = None, title: str = "") -> Figure:
    """A (B, T) bool mask as B rows of frames, masked frames dark."""
    m = _to_numpy(mask).astype(bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be (B, T), got shape {m.shape}")
    B, T = m.shape
    scale = frame_hop if frame_hop else 1.0
    fig, ax = plt.subplots(figsize=(9, 0.45 * B + 1.2))
    ax.imshow(m, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
              extent=(0, T * scale, B - 0.5, -0.5))
    ax.set_yticks(range(B))
    ax.set_ylabel("sequence\n(dark = masked)")
    ax.set_xlabel("time (s)" if frame_hop else "frame")
    ax.set_title(title or f"{m.mean():.1%} of frames masked")
    fig.tight_layout()
    return fig


def _figure_output(fig: Figure) -> dict:
    """An Output-widget display_data entry holding the figure as a PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                     "text/plain": repr(fig)}}


def _explorer(sliders: dict[str, widgets.Widget], draw: Callable[..., Figure]) -> widgets.VBox:
    """Sliders above an Output; any slider change redraws with all current values."""
    output = widgets.Output()
    box = widgets.VBox([widgets.HBox(list(sliders.values())), output])

    def redraw(_change=None):
        fig = draw(**{name: s.value for name, s in sliders.items()})
        output.outputs = (_figure_output(fig),)
        plt.close(fig)
        box.figure = fig

    for s in sliders.values():
        s.observe(redraw, names="value")
    box.sliders, box.output, box.redraw = sliders, output, redraw
    redraw()
    return box


def attention_explorer(maps, frame_hop: float | None = None) -> widgets.VBox:
    """Sliders for layer, head and query frame over ``plot_attention``."""
    layer_maps = _as_layer_maps(maps)
    H, T, _ = layer_maps[0].shape
    style = {"description_width": "initial"}
    sliders = {
        "layer": widgets.IntSlider(0, 0, len(layer_maps) - 1, description="layer", style=style),
        "head": widgets.IntSlider(0, 0, H - 1, description="head", style=style),
        "query": widgets.IntSlider(T // 2, 0, T - 1, description="query frame", style=style),
    }
    return _explorer(sliders, lambda layer, head, query:
                     plot_attention(layer_maps, layer, head, query, frame_hop))


def mask_explorer(T: int, frame_hop: float | None = None, batch: int = 4,
                  block: int = 10) -> widgets.VBox:
    """Sliders for masked ratio, block size (starting at ``block``) and seed over
    ``block_mask`` + ``plot_mask``.

    The title shows the ratio actually masked: whole blocks only, so it moves in
    steps of block/T and can differ from the slider when T is not a multiple
    of the block."""
    style = {"description_width": "initial"}
    sliders = {
        "ratio": widgets.FloatSlider(0.75, min=0.0, max=1.0, step=0.05, description="ratio",
                                     style=style),
        "block": widgets.IntSlider(block, 1, 50, description="block (frames)", style=style),
        "seed": widgets.IntSlider(0, 0, 99, description="seed", style=style),
    }

    def draw(ratio, block, seed):
        mask = block_mask(batch, T, ratio, block, generator=torch.Generator().manual_seed(seed))
        title = (f"ratio {ratio:.2f}, blocks of {block}: "
                 f"{mask.float().mean().item():.1%} of frames masked")
        return plot_mask(mask, frame_hop, title)

    return _explorer(sliders, draw)


def plot_fusion(global_feats, local_feats, scores, lam: float, classes, frame_hop: float) -> Figure:
    """Chapter 06: the fused features lam * local + (1 - lam) * global of one clip
    (T, D) as a map with a colour bar, and the class scores (T, K) the model gives
    on them, one line per class (frame_hop: seconds per frame)."""
    g, loc, sc = _to_numpy(global_feats), _to_numpy(local_feats), _to_numpy(scores)
    if g.shape != loc.shape or g.ndim != 2:
        raise ValueError(f"global and local features must both be (T, D), got {g.shape} and {loc.shape}")
    if sc.ndim != 2 or sc.shape[1] != len(classes):
        raise ValueError(f"scores must be (T, {len(classes)}), got {sc.shape}")
    fused = lam * loc + (1.0 - lam) * g
    fig = plt.figure(figsize=(9, 5.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.2, 1], width_ratios=[1, 0.02], wspace=0.04)
    ax_f = fig.add_subplot(grid[0, 0])
    ax_s = fig.add_subplot(grid[1, 0], sharex=ax_f)
    cax = fig.add_subplot(grid[0, 1])
    lim = float(np.quantile(np.abs(fused), 0.99)) or 1.0
    im = ax_f.imshow(fused.T, aspect="auto", origin="lower", cmap="coolwarm", vmin=-lim, vmax=lim,
                     extent=(0, g.shape[0] * frame_hop, 0, g.shape[1]), interpolation="nearest")
    fig.colorbar(im, cax=cax, label="feature value")
    ax_f.set_ylabel("feature dim")
    ax_f.set_title(f"fused features, lambda = {lam:g} (0: global only, 1: local only)")
    t = (np.arange(sc.shape[0]) + 0.5) * (g.shape[0] * frame_hop / sc.shape[0])  # scores may be coarser
    for k, c in enumerate(classes):
        ax_s.plot(t, sc[:, k], lw=1, label=c.replace("_", " "))
    ax_s.set_ylim(0, 1)
    ax_s.set_xlabel("time (s)")
    ax_s.set_ylabel("frame score")
    ax_s.legend(fontsize=6, ncol=5, loc="upper right")
    fig.subplots_adjust(left=0.08, right=0.9, top=0.93, bottom=0.1, hspace=0.3)
    return fig


def fusion_explorer(global_feats, local_feats, scores_by_lambda, classes, frame_hop: float) -> widgets.VBox:
    """A lambda slider over ``plot_fusion``; ``scores_by_lambda`` maps each lambda
    offered to the clip's (T, K) scores at that lambda (computed beforehand: the
    slider only picks)."""
    lams = sorted(float(k) for k in scores_by_lambda)
    if not lams:
        raise ValueError("scores_by_lambda is empty")
    table = {float(k): v for k, v in scores_by_lambda.items()}
    style = {"description_width": "initial"}
    sliders = {"lam": widgets.SelectionSlider(options=lams, value=0.5 if 0.5 in lams else lams[0],
                                              description="lambda", style=style)}
    return _explorer(sliders, lambda lam: plot_fusion(global_feats, local_feats, table[lam], lam,
                                                      classes, frame_hop))


def plot_operating_point(scores, classes, frame_hop: float, threshold: float, roc, points,
                         truth=None, label: str = "") -> Figure:
    """Chapter 07: one clip's post-processed frame scores (T, K) with the threshold,
    the events decoded at it (and the true events, if given as (onset, offset,
    label)), and the PSD-ROC with where this threshold puts each class. ``label``
    starts the title.

    roc     the effective PSD-ROC (etpr, efpr) of the whole split, as ``psds`` returns it;
    points  {class: (FPR per hour, TPR)} at this threshold on the whole split
            (``sed_metrics.operating_points``)."""
    sc = _to_numpy(scores)
    if sc.ndim != 2 or sc.shape[1] != len(classes):
        raise ValueError(f"scores must be (T, {len(classes)}), got {sc.shape}")
    events = decode_events(sc, classes, frame_hop, threshold)
    fig = plt.figure(figsize=(11, 4.2))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.3], width_ratios=[1.6, 1], wspace=0.25)
    ax_e = fig.add_subplot(grid[0, 0])
    ax_s = fig.add_subplot(grid[1, 0], sharex=ax_e)
    ax_r = fig.add_subplot(grid[:, 1])
    colours = {c: f"C{k % 10}" for k, c in enumerate(classes)}
    t = (np.arange(sc.shape[0]) + 0.5) * frame_hop
    for k, c in enumerate(classes):
        ax_s.plot(t, sc[:, k], lw=1, color=colours[c])
    ax_s.axhline(threshold, color="k", ls="--", lw=1)
    ax_s.set_ylim(0, 1)
    ax_s.set_xlabel("time (s)")
    ax_s.set_ylabel("score")
    rows = {c: i for i, c in enumerate(classes)}
    for on, off, lab in events:
        ax_e.barh(rows[lab] + 0.2, off - on, left=on, height=0.4, color=colours[lab])
    for on, off, lab in truth or []:
        ax_e.barh(rows[lab] - 0.2, off - on, left=on, height=0.4, color="none",
                  edgecolor=colours[lab], hatch="///")
    ax_e.set_yticks(range(len(classes)), [c.replace("_", " ") for c in classes], fontsize=6)
    ax_e.set_ylim(-0.6, len(classes) - 0.4)
    ax_e.set_title(f"{label}{len(events)} events at threshold {threshold:g} (hatched: truth)",
                   fontsize=9)
    etpr, efpr = (_to_numpy(a) for a in roc)
    ax_r.step(efpr, etpr, where="post", color="k", lw=1.2, label="effective PSD-ROC")
    for c, (f, r) in points.items():
        ax_r.plot(f, r, "o", color=colours.get(c, "0.5"), ms=5)
    if points:
        mf = float(np.mean([f for f, _ in points.values()]))
        mr = float(np.mean([r for _, r in points.values()]))
        ax_r.plot(mf, mr, "*", color="red", ms=12, label=f"mean of classes at {threshold:g}")
    ax_r.axvline(100, color="0.6", lw=0.8)
    ax_r.set_xlim(-3, max(110.0, 1.05 * max([f for f, _ in points.values()], default=0.0)))  # dots at 0 stay visible
    ax_r.set_ylim(0, 1.02)
    ax_r.set_xlabel("FPR (false positives per hour)")
    ax_r.set_ylabel("TPR")
    ax_r.set_title("dots: each class at this threshold", fontsize=9)
    ax_r.legend(fontsize=7, loc="lower right")
    return fig


def operating_point_explorer(scores_by_filter, roc_by_filter, points_by_filter, classes,
                             frame_hop: float, truth=None) -> widgets.VBox:
    """Threshold and filter over ``plot_operating_point``. Per filter name:
    the clip's scores (T, K), the split's PSD-ROC (etpr, efpr), and
    {threshold: {class: (FPR, TPR)}}; the thresholds offered are the latter's keys."""
    names = list(scores_by_filter)
    if not names or set(names) != set(roc_by_filter) or set(names) != set(points_by_filter):
        raise ValueError("scores, ROCs and points must be given for the same filters")
    thresholds = sorted(float(t) for t in points_by_filter[names[0]])
    style = {"description_width": "initial"}
    start = min(thresholds, key=lambda x: abs(x - 0.5))
    sliders = {"threshold": widgets.SelectionSlider(options=thresholds, value=start,
                                                    description="threshold", style=style),
               "post": widgets.Dropdown(options=names, value=names[0], description="filter")}

    def draw(threshold, post):
        pts = {float(k): v for k, v in points_by_filter[post].items()}[threshold]
        return plot_operating_point(scores_by_filter[post], classes, frame_hop, threshold,
                                    roc_by_filter[post], pts, truth, label=f"{post} filter: ")

    return _explorer(sliders, draw)


__all__ = ["plot_attention", "attention_explorer", "plot_mask", "mask_explorer", "plot_fusion",
           "fusion_explorer", "plot_operating_point", "operating_point_explorer"]
