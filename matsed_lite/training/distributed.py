"""Several processes, one run: the engine under ``torchrun`` (DistributedDataParallel).

    torchrun --nproc_per_node=N -m matsed_lite finetune --stage 1 ...

torchrun starts N copies of the command and gives each ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK``. ``DistributedContext.setup`` reads them and, when
``WORLD_SIZE > 1``, joins the process group (NCCL on CUDA, each process on GPU
``LOCAL_RANK``; gloo on CPU). With one process nothing here does anything, and
the engine runs exactly as before.

What the engine does with N processes:

* **the same global batches for any N.** Each step's global batch is drawn as
  in one process (the seeded ``EpochSampler``, ``MixedBatches.plan``), and rank
  r takes the r-th of N equal slices (``ShardedBatchSampler``;
  ``MixedBatches.shard`` slices strong, weak and unlabeled separately). A batch
  size that N does not divide is refused, naming both. DDP averages the
  gradients, so a step sees the gradient of the global batch's mean loss: N
  processes reach the weights of one process up to float rounding (for losses
  that are means over clips; a last short batch is split as evenly as it goes);
* **one teacher everywhere.** The weights are in sync after every step, so each
  rank's EMA update gives the same teacher; the teacher's own BatchNorm
  statistics (the CRNN's) are taken from rank 0 at the end of every epoch;
* **validation on rank 0**, its metrics broadcast, so every rank logs and picks
  the same best epoch; the epoch's training metrics are averaged over ranks;
* **files written once**, by rank 0 (log, ``last.pt``, ``best.pt``), followed by a
  barrier; every rank resumes from the same ``last.pt``. The RNG states of every
  rank are saved (``rng_ranks``), so a resumed run continues exactly; resuming
  with another N keeps the global batches but reseeds the other ranks' RNGs.

Each rank draws its own random numbers (dropout, augmentation): rank r > 0 seeds
from (seed, r); rank 0 keeps the single-process seed.
"""
from __future__ import annotations

import atexit
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

# Validation runs on rank 0 while the others wait in a broadcast: the default
# NCCL timeout (10 min) is shorter than a long validation may take.
TIMEOUT = datetime.timedelta(minutes=60)


def _env_int(env, name: str, default: int) -> int:
    value = env.get(name)
    return int(value) if value not in (None, "") else default


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a run: rank, number of processes, GPU on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # where collectives put their tensors

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env=None) -> "DistributedContext":
        """The torchrun variables, without joining anything (1 process if unset)."""
        env = os.environ if env is None else env
        return cls(rank=_env_int(env, "RANK", 0), world_size=_env_int(env, "WORLD_SIZE", 1),
                   local_rank=_env_int(env, "LOCAL_RANK", 0))

    @classmethod
    def setup(cls, device: torch.device) -> "DistributedContext":
        """Join the process group torchrun describes (once per process) for a run on
        ``device``; a plain single-process context without torchrun."""
        ctx = cls.from_env()
        if not ctx.enabled:
            return ctx
        if not dist.is_available():
            raise RuntimeError("WORLD_SIZE > 1 but this torch has no torch.distributed")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=TIMEOUT)
            atexit.register(_destroy)
        if dist.get_world_size() != ctx.world_size or dist.get_rank() != ctx.rank:
            raise RuntimeError(f"process group (rank {dist.get_rank()} of "
                               f"{dist.get_world_size()}) differs from the environment "
                               f"(RANK {ctx.rank}, WORLD_SIZE {ctx.world_size})")
        coll = device if dist.get_backend() == "nccl" else torch.device("cpu")
        return cls(ctx.rank, ctx.world_size, ctx.local_rank, coll)

    # -- collectives (no-ops with one process) --------------------------------------
    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def mean(self, values: dict) -> dict:
        """The mean over ranks of each (float) value of ``values``."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                         device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist())}

    def all_true(self, flag: bool) -> bool:
        """Whether ``flag`` holds on every rank (so every rank stops together)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def sync_buffers(self, model: torch.nn.Module | None) -> None:
        """Rank 0's buffers (BatchNorm statistics) into ``model`` on every rank."""
        if self.enabled and model is not None:
            for b in model.buffers():
                if self.device.type != b.device.type:
                    tmp = b.detach().to(self.device)
                    dist.broadcast(tmp, src=0)
                    b.copy_(tmp)
                else:
                    dist.broadcast(b.data, src=0)

    # -- the engine's pieces -----------------------------------------------------------
    def seed(self, seed: int) -> int:
        """This rank's seed: ``seed`` on rank 0 (as in one process), another per rank."""
        return int(seed) if self.rank == 0 else (int(seed) + 1_000_003 * self.rank) % 2 ** 32

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (gradients averaged over ranks), or itself.

        find_unused_parameters: a stage may hold trainable weights its step does not
        use (an encoder's tagging head); their gradients stay None on every rank."""
        if not self.enabled:
            return model
        device = next(model.parameters()).device
        return DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)

    def shard(self, loader):
        """This rank's part of every global batch of ``loader`` (see the module docstring)."""
        if not self.enabled:
            return loader
        if isinstance(loader, DataLoader):
            if getattr(loader.batch_sampler, "batch_size", None) is None:
                raise ValueError("under torchrun a DataLoader needs a batch_size (its batches "
                                "are split over the processes)")
            return DataLoader(loader.dataset, batch_sampler=ShardedBatchSampler(
                                  loader.batch_sampler, self.rank, self.world_size),
                              collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                              pin_memory=loader.pin_memory, worker_init_fn=loader.worker_init_fn)
        if hasattr(loader, "shard"):
            return loader.shard(self.rank, self.world_size)
        raise ValueError(f"under torchrun the training data must be a Dataset, a DataLoader or "
                        f"have a shard(rank, world_size) method; {type(loader).__name__} has none")


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def check_split(batch_size: int, world_size: int, what: str = "batch size") -> int:
    """The per-process share of a global batch; an error naming both when N does not divide it."""
    if int(batch_size) % int(world_size):
        raise ValueError(f"{what} {batch_size} does not split over {world_size} processes: "
                         f"use a multiple of {world_size}, or a number of processes that "
                         f"divides {batch_size}")
    return int(batch_size) // int(world_size)


def rank_slice(indices: list, rank: int, world_size: int) -> list:
    """The rank-th of ``world_size`` nearly equal consecutive slices of ``indices``."""
    n = len(indices)
    lo, hi = rank * n // world_size, (rank + 1) * n // world_size
    return list(indices[lo:hi])


class ShardedBatchSampler(Sampler):
    """The global batches of ``batch_sampler`` (a ``BatchSampler`` over e.g. an
    ``EpochSampler``), each cut into ``world_size`` slices: this rank's slice.

    Full batches split exactly (the batch size must be a multiple of world_size);
    a last short batch is split as evenly as it goes, and dropped on every rank when
    it holds fewer items than there are ranks (every rank takes the same steps)."""

    def __init__(self, batch_sampler, rank: int, world_size: int):
        self.batch_sampler, self.rank, self.world_size = batch_sampler, int(rank), int(world_size)
        check_split(batch_sampler.batch_size, world_size)

    def set_epoch(self, epoch: int) -> None:
        for s in (self.batch_sampler, getattr(self.batch_sampler, "sampler", None)):
            if hasattr(s, "set_epoch"):
                s.set_epoch(epoch)

    def __iter__(self):
        for batch in self.batch_sampler:
            if len(batch) >= self.world_size:
                yield rank_slice(batch, self.rank, self.world_size)

    def __len__(self) -> int:
        bs = self.batch_sampler
        n = len(bs.sampler)
        if bs.drop_last or n % bs.batch_size == 0:
            return len(bs)
        return len(bs) - (n % bs.batch_size < self.world_size)
