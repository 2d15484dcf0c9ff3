"""Using a trained run: evaluate it on a labelled split, or detect events in any audio (chapter 08).

``evaluate_run``: the whole test-time chain of MAT-SED on a DESED-format split,

    log-mel -> encoder (global-local fusion, lambda) -> context -> frame scores
            -> soft weak mask -> per-class median (or max) filter -> PSDS1, PSDS2, F1s

and optionally one score file per clip in sed_scores_eval's format, so anyone
can recompute the metrics independently of this package.

``predict_audio``: the same chain on arbitrary files (wav, flac, ogg; any rate,
any channel count, any length), thresholded at 0.5 into events, written as a
DESED strong-label TSV. Files longer than the model's clip length are cut into
consecutive clips (the last one padded); each is scored on its own and the
frame scores are joined before filtering, so an event may span the cut.

A "run" is a folder holding ``model.pt`` (``matsed-lite finetune`` or
``train-crnn``), or the folder of ``matsed-lite train`` (its stage2/, else
stage1/, is used), or None: the MAT-SED-lite shipped with the package.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.audio import AUDIO_EXTENSIONS, AudioError, audio_info, stream_audio
from ..data.datasets import layout_for, make_dataset
from ..data.features import LogMel
from ..data.stores import MelStore
from ..files import save_figure
from ..files import write_json as _write_json
from ..models.checkpoints import find_model, load_model, output_hop
from ..models.global_local import DEFAULT_LAMBDA, GlobalLocalFusion, LambdaSweep
from ..presets import RECIPES, get_preset
from ..runtime import pick_device
from .bootstrap import bootstrap_intervals, frame_ap_per_class, paired_bootstrap
from .frame_prediction import predict_frames
from .ground_truth import split_ground_truth
from .postprocessing import (decode_events, filter_windows, max_filter, median_filter,
                             postprocess_all, write_events_tsv)
from .score_files import write_score_files
from .sed_metrics import evaluate_sed, scores_to_dataframes

POSTS = ("median", "max", "none")


def scoring_temperature(info: dict, temperature: float | None) -> float:
    """The temperature a run is scored at: the one given, else its recipe's
    ``val_temperature`` (what selected its epoch)."""
    if temperature is not None:
        t = float(temperature)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"--temperature must be a positive number, got {temperature} "
                             f"(0 or less would divide by zero or invert the scores)")
        return t
    return RECIPES["crnn" if info.get("kind") == "crnn" else "stage2"].val_temperature


def load_run(run, device=None, which: str = "model"):
    """(model in eval mode on its device, info dict, model.pt path).

    which  "model": the selected weights (a mean-teacher run's teacher);
           "student": the student of the same epoch (chapter 08's ablation)."""
    path = find_model(run)
    model, info = load_model(path, which=which)
    dev = pick_device(str(device)) if device is not None else pick_device()
    return model.to(dev), info, path


def fusion_for(model, info: dict, lam: float | None, when: str = "test"):
    """The features hook for a MAT-SED model (None for the CRNN, or lambda 0)."""
    if not hasattr(model, "context"):
        if lam not in (None, 0.0):
            raise ValueError("--fusion-lambda applies to MAT-SED runs only; this run is a CRNN")
        return None
    lam = DEFAULT_LAMBDA if lam is None else float(lam)
    if lam == 0.0:
        return None
    return GlobalLocalFusion.for_preset(info["preset"], lam, when)


def postprocess_scores(frames: dict, clips: dict, classes: Sequence[str], frame_hop: float,
                       post: str = "median", weak_mask: bool = True) -> dict:
    """Soft weak mask and the per-class filter over every clip's frame scores."""
    if post not in POSTS:
        raise ValueError(f"post must be one of {', '.join(POSTS)}, got {post!r}")
    return postprocess_all(frames, clips, classes, frame_hop, filter=post, weak_mask=weak_mask)


def split_truth(data_root, split: str, classes: Sequence[str]):
    """(split spec, ground truth {clip: events}, durations {clip: seconds}) of a
    strongly labelled split."""
    layout = layout_for(data_root)
    if split not in layout:
        raise ValueError(f"{data_root}: no split {split!r} (it has {', '.join(layout)})")
    spec = layout[split]
    if spec.kind != "strong" or spec.tsv is None:
        raise ValueError(f"split {split!r} has no strong labels to evaluate against "
                         f"(it is {spec.kind!r})")
    gt, durations = split_ground_truth(spec, classes)
    return spec, gt, durations


def _scoring_setup(run, data_root, split: str, temperature: float | None, device,
                   which: str = "model") -> dict:
    """What scoring a run on a labelled split needs: the model, its info, the
    temperature, the split's ground truth and a log-mel store of its clips."""
    model, info, path = load_run(run, device, which)
    temperature = scoring_temperature(info, temperature)
    p = get_preset(info["preset"])
    classes = list(info["classes"])
    spec, gt, durations = split_truth(data_root, split, classes)
    return {"model": model, "info": info, "path": path, "preset": p, "classes": classes,
            "ground_truth": gt, "durations": durations, "temperature": temperature,
            "store": MelStore(make_dataset(spec, p, classes=classes), p), "split": split}


def _scored(setup: dict, features, fusion: dict | None, batch_size: int) -> dict:
    """One pass of the model over the setup's store (``features``: a fusion hook or None)."""
    model, store = setup["model"], setup["store"]
    frames, clips = predict_frames(model, store, next(model.parameters()).device,
                                   batch_size=batch_size, features=features, with_clip=True,
                                   temperature=setup["temperature"])
    return {"frames": frames, "clips": clips, "frame_hop": output_hop(model, setup["preset"]),
            "classes": setup["classes"], "ground_truth": setup["ground_truth"],
            "durations": setup["durations"], "fusion": fusion, "info": setup["info"],
            "model_path": setup["path"], "split": setup["split"], "n_clips": len(store),
            "temperature": setup["temperature"]}


def score_split(run, data_root, split: str = "validation", fusion_lambda: float | None = None,
                temperature: float | None = None, device=None, batch_size: int = 16,
                which: str = "model") -> dict:
    """Raw model outputs on a labelled split, before any post-processing: a dict with
    frames {clip: (T, K)}, clips {clip: (K,)}, frame_hop, classes, ground_truth,
    durations, fusion (settings or None), info (the model's), model_path.

    Post-process and score them as often as you like (``postprocess_scores``,
    ``evaluation.evaluate_sed``) without running the model again. which: see ``load_run``."""
    setup = _scoring_setup(run, data_root, split, temperature, device, which)
    fusion = fusion_for(setup["model"], setup["info"], fusion_lambda)
    return _scored(setup, fusion, None if fusion is None else fusion.describe(), batch_size)


def score_split_lambdas(run, data_root, lambdas: Sequence[float], split: str = "validation",
                        temperature: float | None = None, device=None,
                        batch_size: int = 16) -> dict:
    """{lambda: ``score_split`` result} for a MAT-SED run at several fusion lambdas,
    the encoder run once per clip (chapters 06 and 08 sweep lambda)."""
    lambdas = [float(lam) for lam in lambdas]
    for lam in lambdas:
        GlobalLocalFusion(lam)  # the range check, with its message
    setup = _scoring_setup(run, data_root, split, temperature, device)
    if not hasattr(setup["model"], "context"):
        raise ValueError("score_split_lambdas: fusion applies to MAT-SED runs only; this run is a CRNN")
    fusion = GlobalLocalFusion.for_preset(setup["info"]["preset"], DEFAULT_LAMBDA, "test")
    sweep = LambdaSweep(fusion.window, fusion.hop)
    out = {}
    for lam in lambdas:
        sweep.start(lam)
        out[lam] = _scored(setup, sweep, None if lam == 0.0 else {**fusion.describe(), "lambda": lam},
                           batch_size)
    return out


def evaluate_scores(scored: dict, post: str = "median", save_scores=None) -> dict:
    """Post-process the outputs of ``score_split`` and score them: PSDS1, PSDS2,
    per-class values, collar and intersection F1, and the PSD-ROC curves ("roc")."""
    classes, hop = scored["classes"], scored["frame_hop"]
    scores = postprocess_scores(scored["frames"], scored["clips"], classes, hop, post)
    res = evaluate_sed(scores, hop, classes, scored["ground_truth"], scored["durations"], f1=True)
    if save_scores is not None:
        write_score_files(save_scores, scores_to_dataframes(scores, hop, classes,
                                                            scored["durations"]))
    return res


def evaluate_run(run, data_root, split: str = "validation", fusion_lambda: float | None = None,
                 post: str = "median", save_scores=None, temperature: float | None = None,
                 device=None, batch_size: int = 16, bootstrap: int = 0, seed: int = 0) -> dict:
    """PSDS1, PSDS2 (+ per class), collar and intersection F1 of a run on a split, and
    the frame AP of each class (raw frame scores against frame labels).

    run            a run folder / model.pt, or None for the shipped MAT-SED-lite
    fusion_lambda  None: 0.5 for MAT-SED (the paper), ignored for the CRNN
    post           "median" (PSDS1's friend), "max" (PSDS2's), "none"
    save_scores    a folder: one TSV of post-processed scores per clip
    temperature    divides the logits; None: the recipe's (MAT-SED 0.5, as the paper
                   evaluates and as its runs select epochs; the CRNN 1)
    bootstrap      resamples of the clips for 95% intervals of PSDS1 and PSDS2
                   ("intervals"); 0: none
    """
    t0 = time.perf_counter()
    if post not in POSTS:
        raise ValueError(f"post must be one of {', '.join(POSTS)}, got {post!r}")
    scored = score_split(run, data_root, split, fusion_lambda, temperature, device, batch_size)
    res = evaluate_scores(scored, post, save_scores)
    info = scored["info"]
    out = {"run": str(scored["model_path"]), "kind": info["kind"], "preset": info["preset"],
           "split": split, "data_root": str(data_root), "n_clips": scored["n_clips"],
           "frame_hop": scored["frame_hop"], "fusion": scored["fusion"], "post": post,
           "temperature": scored["temperature"],
           **{k: v for k, v in res.items() if k != "roc"}}
    out["frame_ap_per_class"] = frame_ap_per_class(
        scored["frames"], scored["frame_hop"], scored["classes"], scored["ground_truth"],
        scored["durations"])
    if bootstrap:
        scores = postprocess_scores(scored["frames"], scored["clips"], scored["classes"],
                                    scored["frame_hop"], post)
        out["intervals"] = bootstrap_intervals(scores, scored["frame_hop"], scored["classes"],
                                               scored["ground_truth"], scored["durations"],
                                               n_resamples=bootstrap, seed=seed)
        out["bootstrap"] = {"n_resamples": bootstrap, "level": 0.95, "seed": seed}
    out["seconds"] = time.perf_counter() - t0
    if save_scores is not None:
        out["scores_dir"] = str(save_scores)
    return out


def format_table(res: dict) -> str:
    """The per-class table ``matsed-lite evaluate`` prints."""
    per = res.get("per_class", {})
    classes = list(per.get("psds1", {}))
    lines = [f"{res['kind']} run {res['run']} on {res['split']} ({res['n_clips']} clips), "
             f"fusion {res['fusion']}, post {res['post']}",
             f"{'class':<28} {'PSDS1':>7} {'PSDS2':>7} {'collarF1':>9} {'interF1':>8} "
             f"{'frameAP':>8}"]

    def fmt(x):
        return "    nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:7.3f}"

    cf = res.get("collar_f1_per_class", {})
    inf = res.get("intersection_f1_per_class", {})
    fap = res.get("frame_ap_per_class", {})
    for c in classes:
        lines.append(f"{c:<28} {fmt(per['psds1'].get(c))} {fmt(per['psds2'].get(c))} "
                     f"  {fmt(cf.get(c))}  {fmt(inf.get(c))}  {fmt(fap.get(c))}")
    lines.append(f"{'overall':<28} {fmt(res['psds1'])} {fmt(res['psds2'])} "
                 f"  {fmt(res.get('collar_f1'))}  {fmt(res.get('intersection_f1'))}")
    if "intervals" in res:
        (a1, b1), (a2, b2) = res["intervals"]["psds1"], res["intervals"]["psds2"]
        lines.append(f"95% bootstrap intervals over clips ({res['bootstrap']['n_resamples']} "
                     f"resamples): PSDS1 [{a1:.3f}, {b1:.3f}]  PSDS2 [{a2:.3f}, {b2:.3f}]")
    return "\n".join(lines)


def compare_runs(runs: Sequence, data_root, split: str = "validation", post: str = "median",
                 bootstrap: int = 200, seed: int = 0, device=None) -> dict:
    """Several trained runs on the same clips, each scored as ``evaluate`` scores it,
    with a PAIRED bootstrap: every resample of the clips scores every run, so the
    interval of (run - first run) says whether a gap is larger than the choice of
    clips explains (``bootstrap.paired_bootstrap``). The first run is the reference."""
    if len(runs) < 2:
        raise ValueError(f"compare needs at least two runs, got {len(runs)}")
    if post not in POSTS:
        raise ValueError(f"post must be one of {', '.join(POSTS)}, got {post!r}")
    if bootstrap < 2:
        raise ValueError(f"bootstrap must be at least 2 resamples, got {bootstrap}")
    scored, names, seen = {}, [], set()
    for run in runs:
        name, where = str(run), Path(run).resolve()
        if where in seen:  # the same model under two spellings would be paired with itself
            raise ValueError(f"run {name} is given twice")
        seen.add(where)
        scored[name] = score_split(run, data_root, split, device=device)
        names.append(name)
    ref = scored[names[0]]
    for name in names[1:]:
        if scored[name]["classes"] != ref["classes"]:
            raise ValueError(f"{name} detects other classes than {names[0]}: "
                             f"{scored[name]['classes']} vs {ref['classes']}")
    systems = {n: postprocess_scores(s["frames"], s["clips"], s["classes"], s["frame_hop"], post)
               for n, s in scored.items()}
    hops = {n: s["frame_hop"] for n, s in scored.items()}
    paired = paired_bootstrap(systems, hops, ref["classes"], ref["ground_truth"],
                              ref["durations"], n_resamples=bootstrap, seed=seed)
    out = {"split": split, "data_root": str(data_root), "post": post, "n_clips": ref["n_clips"],
           "bootstrap": {"n_resamples": bootstrap, "level": 0.95, "seed": seed, "paired": True},
           "reference": names[0], "runs": {}}
    for n in names:
        r = paired["full"][n]   # all the clips, scored from the DataFrames the bootstrap built
        out["runs"][n] = {"kind": scored[n]["info"]["kind"], "model": str(scored[n]["model_path"]),
                          "psds1": r["psds1"]["psds"], "psds2": r["psds2"]["psds"],
                          "per_class_psds1": r["psds1"]["per_class"],
                          "intervals": paired["intervals"][n],
                          "difference_from_reference": paired["differences"].get(n)}
    return out


def format_comparison(res: dict) -> str:
    """The table ``matsed-lite compare`` prints."""
    lines = [f"{len(res['runs'])} runs on {res['split']} ({res['n_clips']} clips), post "
             f"{res['post']}; 95% intervals from {res['bootstrap']['n_resamples']} paired "
             f"clip resamples; reference: {res['reference']}",
             f"{'run':<40} {'PSDS1':>6} {'interval':>16} {'minus ref':>18} "
             f"{'PSDS2':>6} {'interval':>16} {'minus ref':>18}"]

    def iv(x):
        return f"[{x[0]:6.3f}, {x[1]:6.3f}]"

    for name, r in res["runs"].items():
        d = r["difference_from_reference"]
        row = f"{name[-40:]:<40}"
        for s in ("psds1", "psds2"):
            diff = "(reference)" if d is None else iv(d[s]) + (" *" if d[s][0] > 0 or d[s][1] < 0
                                                              else "  ")
            row += f" {r[s]:6.3f} {iv(r['intervals'][s]):>16} {diff:>18}"
        lines.append(row)
    lines.append("* the paired interval excludes 0: larger than the choice of clips explains")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# prediction on arbitrary audio

def _segments(wave: np.ndarray, clip_samples: int) -> list[tuple[np.ndarray, int]]:
    """Consecutive clips of ``clip_samples`` (the last one zero-padded), with their real lengths."""
    return [_padded(wave[start:start + clip_samples], clip_samples)
            for start in range(0, len(wave), clip_samples)]


def _padded(seg: np.ndarray, clip_samples: int) -> tuple[np.ndarray, int]:
    n = len(seg)
    if n < clip_samples:
        seg = np.concatenate([seg, np.zeros(clip_samples - n, dtype=np.float32)])
    return seg, n


@torch.no_grad()
def score_audio(model, info: dict, path, fusion=None, temperature: float = 1.0,
                keep_mel: bool = True):
    """(frame scores (T, K) over the whole file, per-frame clip scores (T, K), hop, duration,
    mel or None). The file is decoded one clip-length piece at a time
    (``audio.stream_audio``), so memory does not grow with its length."""
    p = get_preset(info["preset"])
    hop = output_hop(model, p)
    device = next(model.parameters()).device
    logmel = LogMel(p).to(device)
    frames, clips, mels = [], [], []
    n_total = 0
    for piece in stream_audio(path, p.sample_rate, p.clip_samples):
        seg, n = _padded(piece, p.clip_samples)
        n_total += n
        mel = logmel(torch.from_numpy(seg)[None].to(device))
        if fusion is not None:
            f, c = fusion(model, mel)
            o = model(frames=f, clip_embedding=c, temperature=temperature)
        elif hasattr(model, "context"):
            o = model(mel=mel, temperature=temperature)
        else:
            o = model(mel)
        probs = o["frame_probs"][0].float().cpu().numpy()
        keep = min(len(probs), max(1, math.ceil(n / p.sample_rate / hop - 1e-9)))
        frames.append(probs[:keep])
        clips.append(np.repeat(o["clip_probs"].float().cpu().numpy(), keep, axis=0))
        if keep_mel:
            mels.append(mel[0].float().cpu().numpy()[:, :math.ceil(n / p.hop_length)])
    return (np.concatenate(frames), np.concatenate(clips), hop, n_total / p.sample_rate,
            np.concatenate(mels, 1) if keep_mel else None)


def _check_predict_args(paths, out_tsv, plot_dir, threshold, post) -> list[str]:
    """Every check that needs no model, before the model is loaded: returns the names."""
    if not paths:
        raise ValueError("no audio files given")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"--threshold must be in (0, 1), got {threshold}")
    if post not in POSTS:
        raise ValueError(f"post must be one of {', '.join(POSTS)}, got {post!r}")
    out = Path(out_tsv)
    if out.is_dir():
        raise IsADirectoryError(21, "is a folder; --out takes the events TSV's file name",
                                str(out))
    for path in paths:
        if Path(path).suffix.lower() not in AUDIO_EXTENSIONS:
            raise AudioError(path, "not a wav, flac or ogg file")
        if any(c in Path(path).name for c in "\t\n\r"):
            raise AudioError(path, "the file name holds a tab or a line break, which the events "
                                   "TSV cannot hold; rename the file")
        audio_info(path)  # exists, is a file, has a readable header
        if Path(path).resolve() == out.resolve():
            raise ValueError(f"--out {out} is one of the input audio files; give the events "
                             f"TSV another name (nothing was written)")
    names = [Path(x).name for x in paths]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"two inputs share the file name {dup[0]!r}: the events TSV keys by name")
    if plot_dir is not None and Path(plot_dir).exists() and not Path(plot_dir).is_dir():
        raise NotADirectoryError(20, "exists and is not a folder; --plot takes a folder",
                                 str(plot_dir))
    return names


def predict_audio(paths: Sequence, run, out_tsv, plot_dir=None, fusion_lambda: float | None = None,
                  post: str = "median", threshold: float = 0.5, device=None,
                  temperature: float | None = None) -> dict:
    """Detect events in audio files; write them to ``out_tsv`` (DESED strong format).

    Returns {file name: [(onset, offset, label), ...]}. The arguments and every
    file's header are checked before the model is loaded; every file is scored
    before anything is written: an unreadable, empty or non-finite file raises
    ``audio.AudioError`` naming it and no TSV is written. Figures (``plot_dir``)
    are named after the whole file name (``a.flac.png``). ``temperature`` divides the
    logits; None: the recipe's, the one ``evaluate`` scores and selects the epoch at."""
    names = _check_predict_args(paths, out_tsv, plot_dir, threshold, post)
    model, info, _ = load_run(run, device)
    temperature = scoring_temperature(info, temperature)
    classes = list(info["classes"])
    fusion = fusion_for(model, info, fusion_lambda)
    events, scored = {}, {}
    for name, path in zip(names, paths):
        frames, clips, hop, duration, mel = score_audio(model, info, path, fusion, temperature,
                                                        keep_mel=plot_dir is not None)
        probs = frames * clips  # the soft weak mask, per 10 s piece
        if post != "none":
            windows = filter_windows(classes, hop)
            probs = (median_filter if post == "median" else max_filter)(probs, windows)
        events[name] = decode_events(probs, classes, hop, threshold, duration=duration)
        scored[name] = (probs, hop, duration, mel)
    write_events_tsv(out_tsv, events)
    if plot_dir is not None:
        # matplotlib (through .plots) is imported only when plots are asked for: it
        # costs about a second of start-up to every evaluation otherwise.
        from .plots import plot_detections
        import matplotlib.pyplot as plt

        plot_dir = Path(plot_dir)
        plot_dir.mkdir(parents=True, exist_ok=True)
        p = get_preset(info["preset"])
        for name, (probs, hop, duration, mel) in scored.items():
            fig = plot_detections(mel, p.frame_hop_seconds, probs, hop, classes, events[name],
                                  threshold, title=name)
            save_figure(fig, plot_dir / f"{name}.png", dpi=100)
            plt.close(fig)
    return events


def write_json(path, obj) -> None:
    """Write JSON atomically (``files.write_json``), numbers of any kind as floats."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, obj, indent=2, default=float)
