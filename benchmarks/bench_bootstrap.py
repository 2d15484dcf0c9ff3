"""How much a bootstrap resample of PSDS costs: scoring renamed clips against re-summing
each clip's detection counts (``sed_metrics.ResampledPSDS``), side by side.

    python benchmarks/bench_bootstrap.py --data data/desed_lite_cpu [--run RUN] [--resamples 10]

Scores one run (default: the shipped CRNN, the quickest to run) on the validation
split once, then times the same resamples both ways, alternating, for PSDS1 and
PSDS2, checks that the values are equal, and prints seconds per resample and the
ratio. The per-clip counts are computed once per setting; their cost is printed
too (it is paid once per system, not per resample).
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np


def main() -> None:
    from matsed_lite.evaluation.bootstrap import resample_clips
    from matsed_lite.evaluation.ground_truth import audio_id
    from matsed_lite.evaluation.inference import postprocess_scores, score_split
    from matsed_lite.evaluation.sed_metrics import ResampledPSDS, psds, scores_to_dataframes
    from matsed_lite.models.checkpoints import shipped_model_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--run", default=None, help="a run folder (default: the shipped CRNN)")
    ap.add_argument("--resamples", type=int, default=10)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    run = args.run or shipped_model_path("crnn")
    o = score_split(run, args.data, "validation", device="cpu")
    post = {audio_id(k): v for k, v in postprocess_scores(o["frames"], o["clips"], o["classes"],
                                                          o["frame_hop"], "median").items()}
    gt = {audio_id(k): v for k, v in o["ground_truth"].items()}
    dur = {audio_id(k): v for k, v in o["durations"].items()}
    dfs = scores_to_dataframes(post, o["frame_hop"], o["classes"], dur)
    ids = sorted(dfs)
    print(f"{run}: {len(ids)} clips, {args.resamples} resamples")
    print(f"{'setting':<7} {'counts once':>12} {'renamed clips':>14} {'re-summed':>10} {'ratio':>6}")
    for setting in ("psds1", "psds2"):
        t = time.perf_counter()
        fast = ResampledPSDS(dfs, gt, dur, setting)
        once = time.perf_counter() - t
        rng = np.random.default_rng(0)
        slow_s, fast_s = [], []
        for _ in range(args.resamples):
            pairs = resample_clips(ids, rng)
            t = time.perf_counter()
            a = psds({n: dfs[k] for n, k in pairs}, {n: gt[k] for n, k in pairs},
                     {n: dur[k] for n, k in pairs}, setting)["psds"]
            slow_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            b = fast(pairs)
            fast_s.append(time.perf_counter() - t)
            assert abs(a - b) < 1e-12, (setting, a, b)
        s, f = statistics.median(slow_s), statistics.median(fast_s)
        print(f"{setting:<7} {once:>11.2f}s {s:>13.3f}s {f:>9.3f}s {s / f:>5.1f}x")


if __name__ == "__main__":
    main()
