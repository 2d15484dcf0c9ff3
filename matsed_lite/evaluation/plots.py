"""Drawing detections: scores, events and ground truth on one time axis.

Pure functions: arrays in, a matplotlib Figure out. ``matsed-lite predict
--plot`` draws each file with ``plot_detections``; the course's other figures
(``course.plots``) share the class colours and the event roll defined here.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..data.labels import event_tuple

# One colour per class, stable across every figure of the course.
CLASS_CMAP = plt.get_cmap("tab10")


def class_colours(classes: Sequence[str]) -> dict[str, tuple]:
    return {c: CLASS_CMAP(i % 10) for i, c in enumerate(classes)}


def draw_event_roll(ax, events, classes: Sequence[str], duration: float | None = None,
                    alpha: float = 0.85) -> None:
    """Events as bars, one row per class (the piano roll of SED)."""
    colours = class_colours(classes)
    index = {c: i for i, c in enumerate(classes)}
    for on, off, lab in map(event_tuple, events):
        ax.barh(index[lab], off - on, left=on, height=0.7, color=colours[lab], alpha=alpha)
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes, fontsize=7)
    ax.set_ylim(len(classes) - 0.5, -0.5)
    if duration is not None:
        ax.set_xlim(0, duration)
    ax.grid(axis="x", alpha=0.3)


def finish_time_figure(fig: Figure, axes, duration: float, title: str) -> Figure:
    """Shared time axis in seconds, the title on top, tight layout."""
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, duration)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    return fig


def plot_detections(logmel: np.ndarray, mel_hop: float, scores: np.ndarray, score_hop: float,
                    classes: Sequence[str], events, threshold: float = 0.5, title: str = "",
                    truth=None) -> Figure:
    """Log-mel, per-class frame scores (with the threshold) and the detected events
    (and the ground truth, when given) on one time axis."""
    logmel, scores = np.asarray(logmel), np.asarray(scores)
    duration = max(logmel.shape[1] * mel_hop, scores.shape[0] * score_hop)
    rows = 4 if truth is not None else 3
    fig, axes = plt.subplots(rows, 1, figsize=(10, 1.9 * rows + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": [1.2, 1.6, 1.4, 1.4][:rows]})
    axes[0].imshow(logmel, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, logmel.shape[1] * mel_hop, 0, logmel.shape[0]))
    axes[0].set_ylabel("mel bin")
    colours = class_colours(classes)
    t = (np.arange(scores.shape[0]) + 0.5) * score_hop
    for k, c in enumerate(classes):
        if scores[:, k].max() >= 0.1 * threshold:
            axes[1].plot(t, scores[:, k], lw=1, color=colours[c], label=c)
    axes[1].axhline(threshold, color="0.3", ls="--", lw=0.8)
    axes[1].set_ylim(0, 1.02)
    axes[1].set_ylabel("score")
    if axes[1].lines[:-1]:
        axes[1].legend(fontsize=6, ncol=5, loc="upper right")
    draw_event_roll(axes[2], events, classes, duration)
    axes[2].set_ylabel("detected")
    if truth is not None:
        draw_event_roll(axes[3], truth, classes, duration)
        axes[3].set_ylabel("truth")
    return finish_time_figure(fig, axes, duration, title)
