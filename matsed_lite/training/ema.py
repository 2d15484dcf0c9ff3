"""The mean ("EMA") teacher: an exponential moving average of the student's weights (chapter 05).

After every optimizer step the engine updates

    teacher <- alpha * teacher + (1 - alpha) * student,   alpha = min(1 - 1/step, max_alpha),

so the teacher is a temporal ensemble of the students: smoother, usually better,
and the model the mean-teacher stages keep.
"""
from __future__ import annotations

import copy

import torch


def ema_alpha(step: int, max_alpha: float) -> float:
    """Mean-teacher decay after ``step`` optimizer steps (1-based): min(1 - 1/step, max).

    Step 1 gives alpha 0 (the teacher becomes a copy of the student); the decay
    then grows towards ``max_alpha`` (0.999 in MAT-SED), so the early teacher
    is not dominated by the random initial weights."""
    return min(1.0 - 1.0 / max(int(step), 1), float(max_alpha))


@torch.no_grad()
def update_ema(teacher: torch.nn.Module, student: torch.nn.Module, alpha: float) -> None:
    """teacher <- alpha * teacher + (1 - alpha) * student, for trained parameters;
    frozen ones (requires_grad False in the student) and buffers (e.g. BatchNorm
    statistics) are copied, so a frozen encoder stays bit-identical in the teacher
    instead of drifting by float rounding."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        if s.requires_grad:
            t.mul_(alpha).add_(s.detach(), alpha=1.0 - alpha)
        else:
            t.copy_(s)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


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
