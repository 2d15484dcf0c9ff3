"""Training ablations of MAT-SED-lite with several seeds, and which differences exceed noise
(chapter 08).

Each variant runs the whole pipeline (masked-reconstruction pre-training, stage 1,
stage 2) on a short budget: ``fraction`` of the preset's epochs per stage, all
variants on one shared frame cache. The reference is the paper's recipe
("relative"); the others change one thing:

    absolute          sinusoidal absolute positions instead of relative ones
    none              no positional encoding in the context network
    no pre-training   stage 1 starts from a random context network
    no consistency    the mean teacher's consistency losses off (weight 0, both stages)
    student           the reference run's student scored instead of its teacher

A difference from the reference counts as beyond noise when, for every seed, the
paired clip-bootstrap interval of (variant - reference) on that seed's runs
excludes 0 on the same side: the clips, and the seed, both fail to explain it.

``run_ablations`` writes ``ablations.json`` (the command, machine, times, every
run's PSDS and the verdicts); the package ships the ``cpu`` preset's file
(``shipped_ablations``), which chapter 08 reads instead of training for an hour.
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.datasets import infer_classes, layout_for, make_datasets
from ..evaluation.bootstrap import paired_bootstrap
from ..evaluation.inference import postprocess_scores, score_split
from ..files import write_json
from ..models.frame_cache import encode_splits
from ..models.passt_lite import SHIPPED_WEIGHTS, load_pretrained_encoder, shipped_encoder_recipe
from ..presets import Preset, get_preset, stage_recipe
from .finetune import finetune
from .reconstruction_pretraining import pretrain_context

VARIANTS = {
    # name: (positions, masked-reconstruction pre-training, consistency on, scored weights)
    "relative": ("relative", True, True, "model"),
    "absolute": ("absolute", True, True, "model"),
    "none": ("none", True, True, "model"),
    "no pre-training": ("relative", False, True, "model"),
    "no consistency": ("relative", True, False, "model"),
    "student": ("relative", True, True, "student"),   # the reference's run, other weights
}
REFERENCE = "relative"
SHIPPED_FILE = Path(__file__).resolve().parent.parent / "weights" / "ablations_cpu.json"


def ablation_epochs(preset: Preset, fraction: float) -> dict:
    """Epochs per stage on the short budget: fraction of the preset's, at least 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    frac = lambda e: max(1, int(round(fraction * e)))  # noqa: E731
    return {"pretrain": frac(preset.pretrain_epochs), "stage1": frac(preset.stage1_epochs),
            "stage2": frac(preset.stage2_epochs)}


def budget_fingerprint(preset: Preset, fraction: float) -> dict:
    """What the results depend on besides the code: a shipped file whose fingerprint
    differs from the current one is stale (tests/test_ablations.py)."""
    return {"preset": preset.name, "fraction": fraction, "epochs": ablation_epochs(preset, fraction),
            "recipes": {k: repr(stage_recipe(k, preset)) for k in ("stage1", "stage2")},
            "sizes": [preset.n_synth_train, preset.n_weak, preset.n_unlabeled, preset.n_validation]}


def _train_variant(name: str, data_root: Path, p: Preset, out: Path, seed: int, epochs: dict,
                   cache, resume: bool) -> Path:
    pos, pretrained, consistency, _ = VARIANTS[name]
    off = None if consistency else {"max_consistency": 0.0}
    init = None
    if pretrained:
        if not (out / "pretrain" / "context.pt").is_file() or not resume:
            pretrain_context(data_root, p, out / "pretrain", seed=seed, pos=pos,
                             epochs=epochs["pretrain"], cache=cache, progress=False,
                             resume=resume)
        init = out / "pretrain" / "context.pt"
    if not (out / "stage1" / "model.pt").is_file() or not resume:
        finetune(data_root, p, out / "stage1", stage=1, init=init, seed=seed,
                 epochs=epochs["stage1"], pos=pos, cache=cache, progress=False,
                 recipe_overrides=off, resume=resume)
    if not (out / "stage2" / "model.pt").is_file() or not resume:
        # fusion off in stage 2's teacher and validation (its cost is ten encoder
        # passes per clip), and in the scoring below: these ablations are about training
        finetune(data_root, p, out / "stage2", stage=2, init=out / "stage1", seed=seed,
                 epochs=epochs["stage2"], fusion_lambda=0.0, progress=False,
                 recipe_overrides=off, resume=resume)
    return out / "stage2"


def run_ablations(data_root, preset: "Preset | str", out_dir, seeds: Sequence[int] = (0, 1),
                  fraction: float = 0.2, variants: Sequence[str] | None = None,
                  bootstrap: int = 200, resume: bool = False, command: str | None = None,
                  echo=print) -> dict:
    """Train every variant for every seed, score them on the validation split
    (global features, no fusion: they were trained without it, and fusion is an
    ablation of its own; median filter; the recipe's temperature) and compare each
    with the reference by a paired bootstrap over clips, per seed."""
    p = get_preset(preset)
    data_root, out_dir = Path(data_root), Path(out_dir)
    names = list(VARIANTS) if variants is None else list(variants)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown ablation variant(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(VARIANTS)}")
    if REFERENCE not in names:
        names.insert(0, REFERENCE)
    if not seeds:
        raise ValueError("give at least one seed")
    epochs = ablation_epochs(p, fraction)
    earlier = [out_dir / f"seed{seed}" for seed in seeds if (out_dir / f"seed{seed}").exists()]
    if earlier and not resume:
        raise ValueError(f"{earlier[0]} holds runs of an earlier ablation; pass resume=True "
                         f"(--resume) to keep them, or choose another output folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    start, cpu0 = time.time(), time.process_time()
    layout = layout_for(data_root)
    splits = ["synth_train", "weak", "unlabeled", "validation"]
    cache = None
    runs, results = {}, {}
    for seed in seeds:
        post = {}
        for name in names:
            t0 = time.perf_counter()
            train_name = REFERENCE if VARIANTS[name][3] == "student" else name
            run_dir = out_dir / f"seed{seed}" / train_name.replace(" ", "_")
            if not (resume and (run_dir / "stage2" / "model.pt").is_file()):
                if cache is None:
                    ds = make_datasets(layout, p, infer_classes(layout), splits=splits)
                    cache = encode_splits(ds, load_pretrained_encoder(p), p, progress=False)
                _train_variant(train_name, data_root, p, run_dir, seed, epochs, cache, resume)
            scored = score_split(run_dir / "stage2", data_root, "validation", fusion_lambda=0.0,
                                 device="cpu", which=VARIANTS[name][3])
            post[name] = postprocess_scores(scored["frames"], scored["clips"], scored["classes"],
                                            scored["frame_hop"], "median")
            runs.setdefault(name, {})[seed] = {"run": str(run_dir),
                                                "minutes": (time.perf_counter() - t0) / 60}
            echo(f"seed {seed} {name:<16} scored ({runs[name][seed]['minutes']:.1f} min)")
        paired = paired_bootstrap(post, scored["frame_hop"], scored["classes"],
                                  scored["ground_truth"], scored["durations"],
                                  n_resamples=bootstrap, seed=seed)
        for name in names:
            r = {"psds1": paired["full"][name]["psds1"]["psds"],
                 "psds2": paired["full"][name]["psds2"]["psds"],
                 "per_class_psds1": paired["full"][name]["psds1"]["per_class"],
                 "interval": paired["intervals"][name]}
            if name != REFERENCE:
                r["difference"] = paired["differences"][name]
            runs[name][seed].update(r)
            echo(f"seed {seed} {name:<16} PSDS1 {r['psds1']:.3f}  PSDS2 {r['psds2']:.3f}")
    for name in names:
        per_seed = runs[name]
        row = {"psds1_mean": float(np.mean([r["psds1"] for r in per_seed.values()])),
               "psds2_mean": float(np.mean([r["psds2"] for r in per_seed.values()])),
               "psds1_by_seed": [per_seed[s]["psds1"] for s in seeds],
               "psds2_by_seed": [per_seed[s]["psds2"] for s in seeds]}
        if name != REFERENCE:
            row["verdict"] = {s: beyond_noise([per_seed[seed]["difference"][s] for seed in seeds])
                              for s in ("psds1", "psds2")}
        results[name] = row
    res = {"command": command, "preset": p.name, "seeds": list(seeds), "reference": REFERENCE,
           "variants": names, "bootstrap_resamples": bootstrap, "fraction": fraction,
           "fingerprint": budget_fingerprint(p, fraction), "encoder": encoder_identity(),
           "data": str(data_root),
           "summary": results, "runs": {n: {str(s): r for s, r in v.items()} for n, v in runs.items()},
           "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
           "torch": torch.__version__, "wall_seconds": time.time() - start,
           "cpu_seconds": time.process_time() - cpu0}
    write_json(out_dir / "ablations.json", res)
    return res


def beyond_noise(differences: Sequence[tuple[float, float]]) -> str:
    """"better" / "worse" when every seed's interval of (variant - reference) lies
    above / below 0, else "within noise"."""
    if differences and all(lo > 0 for lo, _ in differences):
        return "better"
    if differences and all(hi < 0 for _, hi in differences):
        return "worse"
    return "within noise"


def format_ablations(res: dict) -> str:
    """The summary as a Markdown table: mean over seeds, each seed, verdict."""
    lines = [f"| variant | PSDS1 (mean; per seed) | PSDS2 (mean; per seed) | vs {res['reference']} "
             f"(PSDS1 / PSDS2) |", "|---|---|---|---|"]
    for name, row in res["summary"].items():
        seeds1 = ", ".join(f"{v:.3f}" for v in row["psds1_by_seed"])
        seeds2 = ", ".join(f"{v:.3f}" for v in row["psds2_by_seed"])
        verdict = ("reference" if name == res["reference"]
                   else f"{row['verdict']['psds1']} / {row['verdict']['psds2']}")
        lines.append(f"| {name} | {row['psds1_mean']:.3f} ({seeds1}) | {row['psds2_mean']:.3f} "
                     f"({seeds2}) | {verdict} |")
    return "\n".join(lines)


def encoder_identity() -> dict:
    """Which shipped PaSST-lite the variants' frame cache came from: its file's
    SHA-256 and recorded tagging mAP. Results made on another encoder are not the
    current encoder's (chapter 08 says so when the shipped file's differs)."""
    return {"sha256": hashlib.sha256(SHIPPED_WEIGHTS.read_bytes()).hexdigest(),
            "tagging_mAP": shipped_encoder_recipe()["mAP"]}


def shipped_ablations() -> dict:
    """The shipped ``cpu`` ablation results (see ``run_ablations``)."""
    if not SHIPPED_FILE.is_file():
        raise FileNotFoundError(f"no shipped ablation results at {SHIPPED_FILE}")
    return json.loads(SHIPPED_FILE.read_text())
