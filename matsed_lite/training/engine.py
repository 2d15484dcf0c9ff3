"""The training engine: one loop for every stage of the course (chapter 05).

Encoder pre-training, masked reconstruction, both mean-teacher stages and the
CRNN baseline all differ only in *what one step computes*. Everything else is
the same and lives here, written once:

* device choice (``runtime.pick_device``: CUDA, then MPS, then CPU) and mixed
  precision on CUDA (``torch.autocast`` + ``GradScaler``; off elsewhere);
* a seeded data order: the shuffle of epoch ``e`` comes from (seed, e), so a
  resumed run sees exactly the batches the uninterrupted run would have seen;
* gradient clipping *after* backward (and after unscaling; the official MAT-SED
  code clips before backward, which does nothing);
* an optional EMA ("mean") teacher, alpha = min(1 - 1/step, max_alpha);
* per-epoch metrics appended to a JSON-lines log, a tqdm progress bar;
* a checkpoint every epoch (model, teacher, optimizer, scheduler, scaler,
  step, epoch, best metric, RNG states) so ``resume=True`` continues an
  interrupted run bit-for-bit, and a best checkpoint chosen by a named metric.
* several processes under ``torchrun`` (``distributed``): DDP, each rank its
  slice of the same global batches, validation and files on rank 0.

A stage supplies::

    train_step(model, batch, state) -> (loss, {"name": value, ...})
    evaluate(model, state) -> {"val/metric": value, ...}      # optional

``state`` (a ``TrainState``) gives the step, epoch, device, teacher, optimizer
and a free ``extra`` dict. ``train_step`` runs under autocast; the engine does
backward, clipping, the optimizer and scheduler steps and the EMA update.
``evaluate`` runs with the model in eval mode, under ``torch.no_grad()``.
Under torchrun ``train_step`` gets the model in its DDP wrapper (attributes:
``model.module``); ``evaluate`` gets the model itself, on rank 0 only.
"""
from __future__ import annotations

import json
import math
import platform
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..files import save_torch, write_text
from ..runtime import pick_device, seed_everything
from .data_order import EpochSampler, epoch_seed
from .distributed import DistributedContext
from .ema import ema_alpha, make_teacher, update_ema
from .run_state import (BEST_CHECKPOINT, LAST_CHECKPOINT, check_settings, load_checkpoint,
                        rng_states, set_rng_states)

__all__ = ["BEST_CHECKPOINT", "LAST_CHECKPOINT", "EpochSampler", "NonFiniteLoss", "TrainState",
           "check_settings", "epoch_seed", "fit", "load_checkpoint", "rng_states",
           "set_rng_states", "to_device", "warmup_cosine"]
LOG_NAME = "log.jsonl"


class NonFiniteLoss(ValueError):
    """A training step produced a NaN or infinite loss: the run stops before it is saved."""


# ---------------------------------------------------------------------------
# small pieces, public so stages and tests can use them alone

def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0,
                  start_factor: float = 0.0, final_factor: float = 0.0):
    """Per-step LR schedule: linear warm-up from ``start_factor`` x LR, then a cosine
    decay to ``final_factor`` x LR at ``total_steps``. A ``LambdaLR``."""
    total_steps, warmup_steps = max(1, int(total_steps)), max(0, int(warmup_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return start_factor + (1.0 - start_factor) * step / warmup_steps
        phase = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * phase))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move tensors inside (nested) dicts, lists and tuples to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        out = [to_device(v, device, non_blocking) for v in batch]
        if hasattr(batch, "_fields"):  # namedtuple
            return type(batch)(*out)
        return type(batch)(out)
    return batch


def _scalar(v) -> float:
    return float(v.detach().float().mean().item()) if torch.is_tensor(v) else float(v)


# ---------------------------------------------------------------------------
# the loop

@dataclass
class TrainState:
    """What a stage's ``train_step``/``evaluate`` can see (and, for ``extra``, keep)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    epochs: int
    teacher: torch.nn.Module | None = None
    scheduler: Any = None
    scaler: Any = None
    amp: bool = False
    epoch: int = 0          # the current epoch, 1-based (0 before the first)
    step: int = 0           # optimizer steps done so far
    steps_per_epoch: int | None = None
    best_metric: float | None = None
    best_epoch: int | None = None
    out_dir: Path | None = None
    extra: dict = field(default_factory=dict)  # saved in checkpoints: plain data only
    dist: DistributedContext = field(default_factory=DistributedContext)  # rank, processes

    def autocast(self):
        """Autocast context for code that runs outside train_step (e.g. evaluation)."""
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.float16)


def _make_loader(train_data, batch_size, seed, collate_fn, num_workers, drop_last, device):
    if isinstance(train_data, DataLoader) or callable(train_data) and not isinstance(train_data, Dataset):
        return train_data
    if batch_size is None:
        raise ValueError("pass batch_size when train_data is a Dataset")
    sampler = EpochSampler(len(train_data), seed)
    return DataLoader(train_data, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                      num_workers=num_workers, drop_last=drop_last,
                      pin_memory=device.type == "cuda", persistent_workers=False)


def _epoch_batches(loader, epoch: int) -> Iterable:
    """Batches of one epoch: a DataLoader (its sampler/batch sampler told the epoch)
    or a callable ``epoch -> iterable`` for stages that build their own batches."""
    if isinstance(loader, DataLoader):
        for s in (loader.sampler, loader.batch_sampler):
            if hasattr(s, "set_epoch"):
                s.set_epoch(epoch)
        return loader
    return loader(epoch)


def _improved(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` is at least as good as ``best``: ties go to the later epoch,
    which has trained longer on the same evidence (a run stuck at 0 keeps its last
    epoch, not its first)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None or (isinstance(best, float) and math.isnan(best)):
        return True
    return value >= best if mode == "max" else value <= best


def fit(model: torch.nn.Module,
        train_step: Callable,
        train_data,
        *,
        optimizer: torch.optim.Optimizer,
        epochs: int,
        out_dir,
        evaluate: Callable | None = None,
        scheduler=None,
        batch_size: int | None = None,
        collate_fn: Callable | None = None,
        num_workers: int = 0,
        drop_last: bool = False,
        seed: int = 0,
        ema_max_alpha: float | None = None,
        teacher: torch.nn.Module | None = None,
        grad_clip: float | None = None,
        monitor: str | None = None,
        mode: str = "max",
        resume: bool = False,
        device: "str | torch.device | None" = None,
        amp: bool | None = None,
        progress: bool = True,
        stop_after_epoch: int | None = None,
        time_budget_s: float | None = None,
        budget_clock: str = "wall",
        extra: dict | None = None,
        settings: dict | None = None,
        desc: str = "train") -> dict:
    """Train ``model`` for ``epochs`` epochs; returns a summary dict.

    train_data     a Dataset (shuffled by an ``EpochSampler`` seeded from
                   (seed, epoch), batched by ``batch_size``/``collate_fn``), a
                   DataLoader (its sampler's ``set_epoch`` is called if it has one),
                   or a callable ``epoch -> iterable of batches``.
    scheduler      stepped after every optimizer step (per-step LR schedule).
    ema_max_alpha  if given, keep an EMA teacher (a copy of the model, or
                   ``teacher`` if passed) with alpha = min(1 - 1/step, ema_max_alpha).
    grad_clip      max global grad norm, applied after backward and unscaling.
    monitor, mode  the metric (a key of the epoch's log line, e.g. "val/mAP" or
                   "train/loss") whose best value (max or min) picks ``best.pt``;
                   without it the last epoch is the best.
    resume         continue from ``out_dir/last.pt`` if it exists.
    amp            mixed precision; default: on for CUDA only.
    stop_after_epoch  return after this epoch as if interrupted (budgeted runs, tests).
    time_budget_s  end the run (finished, not interrupted) after the first epoch that ends
                   past this many seconds of training: "the same time" comparisons.
    budget_clock   "wall", or "cpu": the process's CPU seconds (``cpu_seconds`` in the
                   log), which other jobs on a shared machine do not inflate.
    extra          initial ``state.extra`` (restored from the checkpoint on resume); plain
                   data only (tensors, numbers, strings, lists, dicts).
    settings       the run's settings (JSON data): written to ``out_dir/settings.json``;
                   a resume with other settings is refused, naming them
                   (``run_state.check_settings``).

    A step whose loss is NaN or infinite stops the run with ``NonFiniteLoss`` naming
    the epoch and step, before anything of that epoch is saved.

    Writes ``out_dir/log.jsonl`` (one line per epoch), ``last.pt`` and ``best.pt``.
    The returned dict holds ``history`` (the log lines), ``best_epoch``,
    ``best_metric``, ``epochs_done``, ``seconds`` and the checkpoint paths.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if budget_clock not in ("wall", "cpu"):
        raise ValueError(f"budget_clock must be 'wall' or 'cpu', got {budget_clock!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if settings is not None:
        check_settings(out_dir, settings, resume)
    device = pick_device(str(device)) if device is not None else pick_device()
    amp = (device.type == "cuda") if amp is None else bool(amp and device.type == "cuda")
    ctx = DistributedContext.setup(device)  # torchrun: join the process group
    progress = progress and ctx.is_main
    model.to(device)
    teacher = make_teacher(model, teacher, ema_max_alpha, device)
    state = TrainState(model=model, optimizer=optimizer, device=device, epochs=epochs,
                       teacher=teacher, scheduler=scheduler,
                       scaler=torch.amp.GradScaler(device.type, enabled=amp), amp=amp,
                       out_dir=out_dir, extra=dict(extra or {}), dist=ctx)
    loader = ctx.shard(_make_loader(train_data, batch_size, seed, collate_fn, num_workers,
                                    drop_last, device))
    state.steps_per_epoch = _steps_per_epoch(loader)
    paths = _RunFiles(out_dir)
    resuming = ctx.broadcast(resume and paths.last.is_file())  # rank 0 decides for all
    history, elapsed = _resume(state, paths, seed) if resuming else _start(paths, seed, ctx)
    net = ctx.wrap(model)  # after loading: DDP starts from the same weights everywhere

    start = time.perf_counter() - elapsed
    cpu_start = time.process_time() - (history[-1].get("cpu_seconds", 0.0) if history else 0.0)
    for epoch in range(state.epoch + 1, epochs + 1):
        if stop_after_epoch is not None and epoch > stop_after_epoch:
            break
        state.epoch = epoch
        t0 = time.perf_counter()
        line = {"epoch": epoch, **_train_epoch(state, net, train_step, loader, grad_clip,
                                              ema_max_alpha, progress, desc)}
        line["train_seconds"] = time.perf_counter() - t0
        if evaluate is not None:  # on rank 0; every rank gets its numbers
            metrics = None
            if ctx.is_main:
                model.eval()
                with torch.no_grad():
                    metrics = {k: _scalar(v) for k, v in evaluate(model, state).items()}
                model.train()
            line.update(ctx.broadcast(metrics))
        is_best = _note_best(state, line, monitor, mode)
        line["best_epoch"] = state.best_epoch
        line["seconds"] = time.perf_counter() - start
        line["cpu_seconds"] = time.process_time() - cpu_start
        history.append(line)
        _save_epoch(state, paths, history, is_best, monitor, mode, seed)
        if progress:
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in line.items()
                     if k not in ("lr", "train_seconds", "seconds", "cpu_seconds")}
            tqdm.write(f"{desc} epoch {epoch}: {shown}")
        used = line["cpu_seconds" if budget_clock == "cpu" else "seconds"]
        if time_budget_s is not None and used >= time_budget_s:
            break

    return {"history": history, "best_epoch": state.best_epoch, "best_metric": state.best_metric,
            "epochs_done": state.epoch, "step": state.step,
            "seconds": time.perf_counter() - start, "device": str(device),
            "last_checkpoint": str(paths.last), "best_checkpoint": str(paths.best),
            "log": str(paths.log), "machine": platform.machine(), "state": state}


# ---------------------------------------------------------------------------
# the loop's pieces: teacher, resume, one epoch, best epoch, checkpoints

def _steps_per_epoch(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:  # a generator function, or a DataLoader over an IterableDataset
        return None


@dataclass(frozen=True)
class _RunFiles:
    out_dir: Path

    @property
    def log(self) -> Path:
        return self.out_dir / LOG_NAME

    @property
    def last(self) -> Path:
        return self.out_dir / LAST_CHECKPOINT

    @property
    def best(self) -> Path:
        return self.out_dir / BEST_CHECKPOINT


def _start(paths: _RunFiles, seed: int, ctx: DistributedContext) -> tuple[list, float]:
    """A fresh run: seeded RNGs, an empty log, no old checkpoints."""
    seed_everything(ctx.seed(seed))
    if ctx.is_main:
        write_text(paths.log, "")
        for p in (paths.last, paths.best):
            p.unlink(missing_ok=True)
    ctx.barrier()
    return [], 0.0


def _resume(state: TrainState, paths: _RunFiles, seed: int) -> tuple[list, float]:
    """Restore everything ``last.pt`` holds; returns (log lines so far, seconds so far)."""
    ck = load_checkpoint(paths.last, map_location=state.device)
    state.model.load_state_dict(ck["model"])
    if state.teacher is not None and ck.get("teacher") is not None:
        state.teacher.load_state_dict(ck["teacher"])
    state.optimizer.load_state_dict(ck["optimizer"])
    if state.scheduler is not None and ck.get("scheduler") is not None:
        state.scheduler.load_state_dict(ck["scheduler"])
    if ck.get("scaler"):
        state.scaler.load_state_dict(ck["scaler"])
    state.epoch, state.step = ck["epoch"], ck["step"]
    state.best_metric, state.best_epoch = ck["best_metric"], ck["best_epoch"]
    state.extra = ck.get("extra", {})
    ranks, ctx = ck.get("rng_ranks") or [ck["rng"]], state.dist
    if ctx.rank < len(ranks):  # each rank's own states; another N: fresh ones past rank 0
        set_rng_states(ranks[ctx.rank])
    else:
        seed_everything(ctx.seed(epoch_seed(seed, state.epoch)))
    # Keep only the log lines of epochs the checkpoint covers (a crash between
    # logging and checkpointing must not leave a duplicate line).
    history = []
    if paths.log.is_file():
        history = [json.loads(l) for l in paths.log.read_text().splitlines() if l.strip()]
        history = [h for h in history if h["epoch"] <= state.epoch]
    if ctx.is_main:
        write_text(paths.log, "".join(json.dumps(h) + "\n" for h in history))
    ctx.barrier()
    return history, ck.get("seconds", 0.0)


def _train_epoch(state: TrainState, net, train_step, loader, grad_clip, ema_max_alpha,
                 progress: bool, desc: str) -> dict:
    """One pass over the epoch's batches (``net``: the model, or its DDP wrapper);
    returns the mean of every step metric (over steps, and over ranks)."""
    model, optimizer, scaler = state.model, state.optimizer, state.scaler
    model.train()
    sums: dict[str, torch.Tensor] = {}
    n_batches = 0
    bar = tqdm(_epoch_batches(loader, state.epoch), total=state.steps_per_epoch,
               desc=f"{desc} {state.epoch}/{state.epochs}", disable=not progress, leave=False)
    for batch in bar:
        batch = to_device(batch, state.device, non_blocking=True)
        with state.autocast():
            loss, metrics = train_step(net, batch, state)
        if not state.dist.all_true(bool(torch.isfinite(loss.detach()).all())):
            raise NonFiniteLoss(
                f"{desc}: the loss is {_scalar(loss)} at epoch {state.epoch}, step "
                f"{state.step + 1} (batch {n_batches + 1} of the epoch); stopped before saving "
                f"the epoch. Check the data (`matsed-lite data check`) or lower the learning "
                f"rate; {state.out_dir / LAST_CHECKPOINT} still holds epoch {state.epoch - 1}"
                if state.epoch > 1 else
                f"{desc}: the loss is {_scalar(loss)} at epoch 1, step {state.step + 1}; check "
                f"the data (`matsed-lite data check`) or lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip is not None:  # after unscaling, so the threshold is in true units
            scaler.unscale_(optimizer)
            gnorm = torch.nn.utils.clip_grad_norm_(
                [p for g in optimizer.param_groups for p in g["params"]], grad_clip)
            metrics = {**metrics, "grad_norm": gnorm}
        scaler.step(optimizer)
        scaler.update()
        state.step += 1
        if state.scheduler is not None:
            state.scheduler.step()
        if state.teacher is not None:
            update_ema(state.teacher, model, ema_alpha(state.step, ema_max_alpha or 0.999))
        for k, v in {"loss": loss, **metrics}.items():
            v = v.detach().float().mean() if torch.is_tensor(v) else torch.tensor(float(v))
            sums[k] = sums.get(k, 0.0) + v
        n_batches += 1
        if progress and (n_batches % 10 == 1):
            bar.set_postfix(loss=f"{_scalar(loss):.4f}")
    bar.close()
    state.dist.sync_buffers(state.teacher)  # the teacher's own BatchNorm statistics: rank 0's
    out = {"step": state.step, "lr": optimizer.param_groups[0]["lr"]}
    out.update(state.dist.mean({f"train/{k}": _scalar(v) / max(n_batches, 1)
                                for k, v in sums.items()}))
    return out


def _note_best(state: TrainState, line: dict, monitor: str | None, mode: str) -> bool:
    """Whether this epoch is the best so far by ``monitor`` (every epoch is, without one)."""
    if monitor is None:
        is_best = True
    elif monitor not in line:
        raise KeyError(f"monitor {monitor!r} is not in the epoch metrics: {sorted(line)}")
    else:
        is_best = _improved(line[monitor], state.best_metric, mode)
    if is_best:
        state.best_epoch = line["epoch"]
        state.best_metric = line[monitor] if monitor else None
    return is_best


def _save_epoch(state: TrainState, paths: _RunFiles, history: list, is_best: bool,
                monitor: str | None, mode: str, seed: int) -> None:
    """best.pt (if best), last.pt (everything a resume needs), then the log, each atomically."""
    line = history[-1]
    ck = {"model": state.model.state_dict(),
          "teacher": state.teacher.state_dict() if state.teacher is not None else None,
          "optimizer": state.optimizer.state_dict(),
          "scheduler": state.scheduler.state_dict() if state.scheduler is not None else None,
          "scaler": state.scaler.state_dict() if state.amp else None,
          "epoch": line["epoch"], "step": state.step, "best_metric": state.best_metric,
          "best_epoch": state.best_epoch, "monitor": monitor, "mode": mode,
          "metrics": line, "extra": state.extra, "seed": seed,
          "seconds": line["seconds"], "rng": rng_states()}
    if state.dist.enabled:  # every rank's RNG states, for an exact resume
        ck["rng_ranks"] = state.dist.gather(ck["rng"])
    if state.dist.is_main:
        if is_best:
            save_torch({k: ck[k] for k in ("model", "teacher", "epoch", "step", "metrics",
                                           "monitor", "mode", "best_metric", "seed")}, paths.best)
        save_torch(ck, paths.last)
        write_text(paths.log, "".join(json.dumps(h) + "\n" for h in history))
    state.dist.barrier()
