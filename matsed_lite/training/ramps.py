"""Consistency-weight ramps of the mean-teacher stages (chapter 05).

The weight of the consistency loss grows from about 0 to the recipe's maximum
over the first part of a run. Ramps are given as a *fraction of the run*
(MAT-SED: 8 of 15 epochs, 15 of 30; DCASE: 50 of 200), so a shorter lite budget
keeps the same shape.
"""
from __future__ import annotations

import math

from ..presets import Recipe

# progress x = (epochs done, fractional) / (ramp length), clamped to [0, 1]


def ramp_value(kind: str, x: float) -> float:
    """The ramp's shape in [0, 1] at progress x.

    linear   x                                (MAT-SED stage 1)
    sigmoid  1 / (1 + exp(-10 (x - 0.5)))     (MAT-SED stage 2; 0.0067 at 0, 0.9933 at 1)
    dcase    exp(-5 (1 - x)^2)                (the DCASE baseline; 0.0067 at 0, 1 at 1)
    """
    x = min(1.0, max(0.0, float(x)))
    if kind == "linear":
        return x
    if kind == "sigmoid":
        return 1.0 / (1.0 + math.exp(-10.0 * (x - 0.5)))
    if kind == "dcase":
        return math.exp(-5.0 * (1.0 - x) ** 2)
    raise ValueError(f"unknown ramp {kind!r} (linear, sigmoid or dcase)")


def consistency_weight(recipe: Recipe, epochs_done: float, total_epochs: int) -> float:
    """w_cons after ``epochs_done`` (fractional) epochs of a ``total_epochs`` run (chapter 05)."""
    ramp_len = max(recipe.ramp_fraction * total_epochs, 1e-9)
    return recipe.max_consistency * ramp_value(recipe.ramp, epochs_done / ramp_len)

