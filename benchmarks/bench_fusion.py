"""What global-local fusion costs beyond the encoder work it has to do.

    python benchmarks/bench_fusion.py [--preset cpu] [--batch 8] [--hop 16] [--repeats 5]
                                      [--device cpu|cuda]

The encoder work of a fused pass is fixed: one global pass over the clips
(frame features + clip embedding) and one pass over every window. Fusion adds
cutting the windows, the overlap-add and the mix. Three timings by
``global_local.time_fusion``, taking turns inside each repeat so that drifting
load hits them alike (median of --repeats, after a warm-up; inference, no
gradients, the shipped PaSST-lite):

    global    encoder.frames_and_clip(mel)                       (B clips)
    windows   encoder.frame_features(windows)                    (B x W windows, pre-cut)
    fused     global_local.fused_features(encoder, mel, 0.5, ...)   the whole thing

ratio = fused / (global + windows). The target is at most 1.15.
"""
from __future__ import annotations

import argparse
import platform

import torch

from matsed_lite.models.global_local import FusionWindows, time_fusion
from matsed_lite.models.passt_lite import load_pretrained_encoder
from matsed_lite.presets import get_preset


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--hop", type=int, default=None, help="mel frames (default: the test hop)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    p = get_preset(args.preset)
    device = torch.device(args.device)
    w = FusionWindows.for_preset(p)
    hop = args.hop or w.test_hop
    enc = load_pretrained_encoder(p).to(device)
    torch.manual_seed(0)
    mel = torch.randn(args.batch, p.n_mels, p.n_frames, device=device)
    res = time_fusion(enc, mel, w.window, hop, repeats=args.repeats)
    med, ratio, n_windows = res["ms"], res["ratio"], res["windows"]
    print(f"preset {p.name}, batch {args.batch}, {n_windows} windows of {w.window} mel frames, "
          f"hop {hop}; device {device} ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads), torch {torch.__version__}")
    for k, v in med.items():
        print(f"  {k:<8} {v:8.1f} ms")
    print(f"  fused / (global + windows) = {ratio:.3f}  (target <= 1.15)")
    return res


if __name__ == "__main__":
    main()
