"""What relative positions cost: one attention layer, forward + backward.

    python benchmarks/bench_attention.py [--lengths 500 1000] [--dim 768] [--heads 12]
                                         [--batch 4] [--repeats 5] [--device cpu|cuda]

Three variants with identical projections (qkv: dim -> 3 dim, out: dim -> dim):

    relative   matsed_lite MultiHeadSelfAttention(pos="relative"), SDPA path
    none       matsed_lite MultiHeadSelfAttention(pos="none")
    sdpa       the same projections around a bare
               torch.nn.functional.scaled_dot_product_attention (the baseline)

Time: median over --repeats runs of forward + backward (after one warm-up
run each), input requiring grad as it would inside a network. The three
variants take turns within each repeat, so drifting load on a shared machine
hits them alike and the ratios stay meaningful.

Peak memory: on CUDA, torch.cuda.max_memory_allocated() over one forward +
backward, minus what was allocated before it. On CPU, each variant runs in a
fresh Python subprocess, which resets its peak resident set size (Linux:
/proc/self/clear_refs), runs one forward + backward and reports peak RSS
(VmHWM) minus the RSS before the step; elsewhere it falls back to the growth
of resource.getrusage's ru_maxrss, which an earlier peak (imports) can hide.
RSS counts what the process really touched, allocator slack included, so
read it as "about this much", not to the megabyte.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("relative", "none", "sdpa")


class PlainSDPA(nn.Module):
    """The baseline: the same two projections, nothing but SDPA in between."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, T, D))


def build(variant: str, dim: int, heads: int) -> nn.Module:
    if variant == "sdpa":
        return PlainSDPA(dim, heads)
    from matsed_lite.models.attention import MultiHeadSelfAttention
    return MultiHeadSelfAttention(dim, heads, pos=variant)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make_step(variant: str, T: int, dim: int, heads: int, batch: int, device: str):
    """A closure running one forward + backward of a fresh layer."""
    torch.manual_seed(0)
    layer = build(variant, dim, heads).to(device)
    x = torch.randn(batch, T, dim, device=device, requires_grad=True)

    def step():
        layer(x).sum().backward()
        layer.zero_grad(set_to_none=True)
        x.grad = None
    return step


def time_variants(T: int, args) -> dict:
    """Median seconds per variant. The variants take turns, repeat by repeat,
    so that a machine whose load drifts (shared CPUs) slows them all alike."""
    steps = {v: make_step(v, T, args.dim, args.heads, args.batch, args.device) for v in VARIANTS}
    for step in steps.values():  # warm-up
        step()
    times = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for v, step in steps.items():
            sync(args.device)
            t = time.perf_counter()
            step()
            sync(args.device)
            times[v].append(time.perf_counter() - t)
    return {v: statistics.median(ts) for v, ts in times.items()}


def peak_memory(variant: str, T: int, args) -> int:
    """Bytes of peak memory over one forward + backward, beyond the layer and input."""
    if args.device == "cuda":
        step = make_step(variant, T, args.dim, args.heads, args.batch, args.device)
        make_step(variant, 16, args.dim, args.heads, args.batch, args.device)()  # lazy init
        sync(args.device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        sync(args.device)
        return torch.cuda.max_memory_allocated() - base
    # CPU: a fresh process, so that its high-water mark is this variant's alone.
    cmd = [sys.executable, __file__, "--_memory", variant, str(T), "--dim", str(args.dim),
           "--heads", str(args.heads), "--batch", str(args.batch), "--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1])


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _memory_child(variant: str, T: int, args) -> int:
    """Peak RSS growth over one step. Linux lets a process reset its own
    high-water mark (write 5 to /proc/self/clear_refs), so the peak after the
    step is this step's alone, not an earlier one (imports, set-up). Where
    that is not possible, fall back to the ru_maxrss difference."""
    import resource
    step = make_step(variant, T, args.dim, args.heads, args.batch, args.device)
    make_step(variant, 16, args.dim, args.heads, args.batch, args.device)()  # lazy init
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
        step()
        return (_status_kib("VmHWM") - before) * 1024
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # KiB on Linux


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[500, 1000])
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: torch's default)")
    ap.add_argument("--_memory", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args._memory:  # child process: one memory measurement
        print(_memory_child(args._memory[0], int(args._memory[1]), args))
        return

    if args.device == "cuda":
        machine = f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
        memory = "torch.cuda.max_memory_allocated over one forward+backward"
    else:
        machine = f"{cpu_model()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs"
        memory = "peak RSS growth over one forward+backward, fresh process per cell"
    print(f"machine: {machine}; torch {torch.__version__}")
    print(f"one attention layer, dim {args.dim}, {args.heads} heads, batch {args.batch}, "
          f"forward+backward, median of {args.repeats} after 1 warm-up")
    print(f"memory: {memory}\n")
    print(f"{'T':>6} {'variant':<10}{'ms':>10}{'x sdpa':>8}{'peak MiB':>10}{'x sdpa':>8}")
    for T in args.lengths:
        mem = {v: peak_memory(v, T, args) for v in VARIANTS}
        sec = time_variants(T, args)
        for v in VARIANTS:
            mem_ratio = mem[v] / mem["sdpa"] if mem["sdpa"] > 0 else float("nan")
            print(f"{T:>6} {v:<10}{1e3 * sec[v]:>10.1f}{sec[v] / sec['sdpa']:>8.2f}"
                  f"{mem[v] / 2**20:>10.0f}{mem_ratio:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
