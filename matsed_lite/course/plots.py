"""Drawing clips, labels and data statistics: the course's figures.

Pure functions: arrays in, a matplotlib Figure out. Notebooks call them and
save the figures; explorers redraw them inside ipywidgets; tests call them
directly. Nothing here reads files or holds state.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..evaluation.plots import CLASS_CMAP, class_colours, draw_event_roll, finish_time_figure

def plot_clip(waveform: np.ndarray, sample_rate: int, logmel: np.ndarray, frame_hop: float,
              events, classes: Sequence[str], frame_labels: np.ndarray | None = None,
              title: str = "") -> Figure:
    """Waveform, log-mel and event roll (and optionally frame labels) on one time axis."""
    waveform = np.asarray(waveform)
    logmel = np.asarray(logmel)
    duration = waveform.size / sample_rate
    rows = 4 if frame_labels is not None else 3
    ratios = [1, 2, 1.6, 1.6][:rows]
    fig, axes = plt.subplots(rows, 1, figsize=(10, 1.6 * sum(ratios)), sharex=True,
                             gridspec_kw={"height_ratios": ratios})
    t = np.arange(waveform.size) / sample_rate
    axes[0].plot(t, waveform, lw=0.4, color="0.2")
    axes[0].set_ylabel("amplitude")
    axes[1].imshow(logmel, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, logmel.shape[1] * frame_hop, 0, logmel.shape[0]))
    axes[1].set_ylabel("mel bin")
    draw_event_roll(axes[2], events, classes, duration)
    axes[2].set_ylabel("events")
    if frame_labels is not None:
        fl = np.asarray(frame_labels)
        axes[3].imshow(fl.T, origin="upper", aspect="auto", cmap="Greys", vmin=0, vmax=1,
                       interpolation="nearest", extent=(0, fl.shape[0] * frame_hop, len(classes) - 0.5, -0.5))
        axes[3].set_yticks(range(len(classes)))
        axes[3].set_yticklabels(classes, fontsize=7)
        axes[3].set_ylabel(f"frames ({frame_hop * 1000:g} ms)")
    return finish_time_figure(fig, axes, duration, title)


def plot_spectrogram_grid(logmels: Mapping[str, np.ndarray], frame_hop: float,
                          ncols: int = 5, title: str = "") -> Figure:
    """One log-mel panel per named sound (e.g. one event of each class; chapter 00's gallery).
    Time in seconds on the bottom row's axes, mel bin on the left column's."""
    names = list(logmels)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.2 * nrows), squeeze=False)
    vmin = min(float(np.min(m)) for m in logmels.values())
    vmax = max(float(np.max(m)) for m in logmels.values())
    longest = max(np.asarray(m).shape[1] for m in logmels.values()) * frame_hop
    for ax, name in zip(axes.flat, names):
        m = np.asarray(logmels[name])
        ax.imshow(m, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                  extent=(0, m.shape[1] * frame_hop, 0, m.shape[0]))
        ax.set_xlim(0, longest)  # one time scale for every panel
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for i, ax in enumerate(list(axes.flat)[:len(names)]):
        row, col = divmod(i, ncols)
        if row == nrows - 1 or i + ncols >= len(names):  # the lowest panel of its column
            ax.set_xlabel("time (s)", fontsize=8)
        if col == 0:
            ax.set_ylabel("mel bin", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_event_lengths(lengths: Mapping[str, Sequence[float]], classes: Sequence[str],
                       highlight: Sequence[str] = (), title: str = "") -> Figure:
    """Distribution of event lengths per class (log scale); ``highlight`` marks a group."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    data = [np.asarray(lengths.get(c, []), dtype=float) for c in classes]
    shown = [d if d.size else np.array([np.nan]) for d in data]
    box = ax.boxplot(shown, vert=False, patch_artist=True, widths=0.6)
    colours = class_colours(classes)
    for patch, c in zip(box["boxes"], classes):
        patch.set_facecolor(colours[c])
        patch.set_alpha(0.9 if c in highlight else 0.45)
    ax.set_yticks(range(1, len(classes) + 1))
    ax.set_yticklabels([f"{c} ({len(d)})" for c, d in zip(classes, data)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("event length (s)")
    ax.grid(axis="x", alpha=0.3, which="both")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_valid_mask(waveform: np.ndarray, sample_rate: int, mask: np.ndarray,
                    frame_hop: float, title: str = "") -> Figure:
    """A padded clip with its valid-frame mask underneath."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 2.8), sharex=True,
                             gridspec_kw={"height_ratios": [2, 0.6]})
    t = np.arange(len(waveform)) / sample_rate
    axes[0].plot(t, waveform, lw=0.4, color="0.2")
    axes[0].set_ylabel("amplitude")
    m = np.asarray(mask, dtype=float)[None, :]
    axes[1].imshow(m, aspect="auto", cmap="Greens", vmin=0, vmax=1, interpolation="nearest",
                   extent=(0, m.shape[1] * frame_hop, 0, 1))
    axes[1].set_yticks([])
    axes[1].set_ylabel("valid")
    axes[1].set_xlabel("time (s)")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def plot_patch_grid(logmel: np.ndarray, frame_hop: float, patch: int = 16, stride: int = 10,
                    keep_freq=None, keep_time=None, highlight: Sequence[tuple[int, int]] = (),
                    title: str = "") -> Figure:
    """A log-mel with the encoder's patch grid drawn over it.

    Thin lines mark where patches start (every ``stride`` frames / mel bins);
    ``highlight`` outlines some (freq, time) patches in full, to show that
    16-wide patches with stride 10 overlap; ``keep_freq`` / ``keep_time``
    (patchout survivors) grey out the dropped stripes."""
    logmel = np.asarray(logmel)
    n_mels, T = logmel.shape
    nf = (n_mels - patch) // stride + 1
    nt = (T - patch) // stride + 1
    fig, ax = plt.subplots(figsize=(10, 2.8))
    ax.imshow(logmel, origin="lower", aspect="auto", cmap="magma",
              extent=(0, T * frame_hop, 0, n_mels))
    for t in range(nt):
        ax.axvline(t * stride * frame_hop, color="w", lw=0.3, alpha=0.5)
    for f in range(nf):
        ax.axhline(f * stride, color="w", lw=0.3, alpha=0.5)
    if keep_time is not None:
        kept = set(int(i) for i in keep_time)
        for t in range(nt):
            if t not in kept:
                ax.axvspan(t * stride * frame_hop, (t * stride + patch) * frame_hop,
                           color="0.6", alpha=0.55, lw=0)
    if keep_freq is not None:
        kept = set(int(i) for i in keep_freq)
        for f in range(nf):
            if f not in kept:
                ax.axhspan(f * stride, f * stride + patch, color="0.6", alpha=0.55, lw=0)
    for k, (f, t) in enumerate(highlight):
        ax.add_patch(plt.Rectangle((t * stride * frame_hop, f * stride), patch * frame_hop, patch,
                                   fill=False, ec=CLASS_CMAP(k % 10), lw=2))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel bin")
    ax.set_title(title or f"{nf} x {nt} patches of {patch}x{patch}, stride {stride}")
    fig.tight_layout()
    return fig


def plot_average_precision(per_class: Mapping[str, float], title: str = "",
                           chance: Mapping[str, float] | None = None) -> Figure:
    """Horizontal bars of average precision per class (with chance level marks)."""
    classes = list(per_class)
    ap = [np.nan if per_class[c] is None else per_class[c] for c in classes]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    colours = class_colours(classes)
    ax.barh(range(len(classes)), ap, color=[colours[c] for c in classes], alpha=0.85)
    if chance:
        ax.scatter([chance.get(c, np.nan) for c in classes], range(len(classes)), marker="|",
                   s=200, color="k", label="chance (class prevalence)")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
