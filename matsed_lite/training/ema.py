"""The mean ("EMA") teacher: an exponential moving average of the student's weights (chapter 05).

After every optimizer step the engine updates

    teacher <- alpha * teacher + (1 - alpha) * student,   alpha = min(1 - 1/step, max_alpha),

so the teacher is a temporal ensemble of the students: smoother, usually better,
and the model the mean-teacher stages keep.

Two details decide whether the teacher is any good:

* its averaging horizon, about 1 / (1 - max_alpha) steps. MAT-SED's 0.999 averages
  the last ~1,000 steps of runs that take tens of thousands; a lite stage takes a
  few hundred, where 0.999 is never reached and the teacher is the plain average
  of every student since the start (it lags). ``ema_max_alpha_for`` scales the
  horizon with the run: a tenth of its steps, at most 0.999.
* BatchNorm. Averaged weights need their own normalisation statistics: the
  student's running statistics do not match them. As in the DCASE baseline, the
  teacher keeps its own, updated by its own forward passes in training
  (``batchnorm_tracking``); ``update_ema`` never copies them.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn

# Layers whose running statistics belong to the model that computed them.
_NORM_WITH_STATS = (nn.modules.batchnorm._BatchNorm,)


def ema_alpha(step: int, max_alpha: float) -> float:
    """Mean-teacher decay after ``step`` optimizer steps (1-based): min(1 - 1/step, max) (chapter 05).

    Step 1 gives alpha 0 (the teacher becomes a copy of the student); the decay
    then grows towards ``max_alpha`` (0.999 in MAT-SED), so the early teacher
    is not dominated by the random initial weights."""
    return min(1.0 - 1.0 / max(int(step), 1), float(max_alpha))


def ema_max_alpha_for(total_steps: int, horizon_fraction: float = 0.1,
                      cap: float = 0.999) -> float:
    """The largest EMA decay for a run of ``total_steps``: an averaging horizon of
    ``horizon_fraction`` of the run (1 - 1 / (fraction x steps)), at most ``cap``
    (MAT-SED's 0.999, reached by runs of 10,000 steps or more). 600 steps: 0.983."""
    horizon = max(1.0, horizon_fraction * int(total_steps))
    return min(float(cap), 1.0 - 1.0 / horizon)


def _own_statistics(model: torch.nn.Module) -> set[int]:
    """ids of the buffers a model must keep for itself (BatchNorm running statistics)."""
    return {id(b) for m in model.modules() if isinstance(m, _NORM_WITH_STATS)
            for b in m.buffers()}


@torch.no_grad()
def update_ema(teacher: torch.nn.Module, student: torch.nn.Module, alpha: float) -> None:
    """teacher <- alpha * teacher + (1 - alpha) * student, for trained parameters (chapter 05).

    Frozen parameters (requires_grad False in the student) are copied, so a frozen
    encoder stays bit-identical in the teacher instead of drifting by float
    rounding; other buffers are copied too. BatchNorm running statistics are not
    touched: the teacher keeps its own (see ``batchnorm_tracking``)."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        if s.requires_grad:
            t.mul_(alpha).add_(s.detach(), alpha=1.0 - alpha)
        else:
            t.copy_(s)
    own = _own_statistics(teacher)
    for t, s in zip(teacher.buffers(), student.buffers()):
        if id(t) not in own:
            t.copy_(s)


@contextmanager
def batchnorm_tracking(model: torch.nn.Module):
    """Within the block, the model's BatchNorm layers run in training mode: they
    normalise with the batch's statistics and update the model's *own* running
    statistics (how the DCASE baseline's teacher keeps statistics that match its
    averaged weights). Everything else keeps its mode. A no-op without BatchNorm."""
    layers = [m for m in model.modules() if isinstance(m, _NORM_WITH_STATS)]
    modes = [m.training for m in layers]
    for m in layers:
        m.train()
    try:
        yield model
    finally:
        for m, mode in zip(layers, modes):
            m.train(mode)


def make_teacher(model: torch.nn.Module, teacher: torch.nn.Module | None,
                 ema_max_alpha: float | None, device) -> torch.nn.Module | None:
    """The EMA teacher (given, or a copy of the model when ema_max_alpha is set), frozen
    and in eval mode on ``device``; None when the run has no teacher."""
    if teacher is None and ema_max_alpha is not None:
        teacher = copy.deepcopy(model)
    if teacher is not None:
        teacher.to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    return teacher
