"""A plain supervised CRNN, written the way a new user would, on any DESED-format folder.

    python benchmarks/plain_crnn.py --data /path/to/folder --minutes 25 [--out result.json]

The reference for issue 10's race: "the `cpu` pipeline must clearly beat a plain CRNN
trained from scratch for the same time". It shares no data or training code with the
package on purpose (its own audio reading, resampling, log-mel, labels, model and
loop), so a bug in the package's data path cannot hide in both. Only the scoring is
the package's (``ground_truth_from_tsv`` and ``evaluate_sed``), so both sides are
scored identically.

The recipe: 4 conv blocks (BatchNorm, ReLU, frequency pooling, time pooled once: 40 ms
frames) and a 2-layer biGRU; a strong head and an attention-pooled clip head; binary
cross-entropy on strong frames (strong clips) and clip labels (weak clips); batches of
12 strong + 12 weak clips; Adam at 1e-3; no mean teacher, augmentation or unlabelled
clips. Validation is scored every ``--eval-minutes`` and at the end, raw frame scores
and a 280 ms median filter; the best and the last are reported. Minutes are this
process's CPU minutes (``--clock cpu``, the default, like ``train-crnn --budget-clock cpu``):
with one thread that is the time a quiet machine would take, whatever else runs beside it.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
from scipy.ndimage import median_filter
from scipy.signal import resample_poly

from matsed_lite.evaluation.bootstrap import bootstrap_intervals
from matsed_lite.evaluation.ground_truth import ground_truth_from_tsv
from matsed_lite.evaluation.sed_metrics import evaluate_sed

RATE, SECONDS, HOP = 16000, 10.0, 320          # 20 ms mel frames
N_MEL_FRAMES = int(SECONDS * RATE / HOP)       # 500
FRAME = 2 * HOP / RATE                         # 40 ms output frames


def read_tsv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def load_wave(path: Path) -> np.ndarray:
    """Mono, 16 kHz, zero-padded or cut to 10 s."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != RATE:
        g = gcd(sr, RATE)
        x = resample_poly(x, RATE // g, sr // g).astype(np.float32)
    n = int(SECONDS * RATE)
    return np.pad(x[:n], (0, max(0, n - len(x))))


def audio_files(root: Path, folder_hint: str) -> dict:
    """name -> path of the audio files under a folder of ``root/audio`` whose path holds
    ``folder_hint`` (the split: real DESED's ``synthetic21_train``, DESED-lite's ``synth_train``)."""
    return {p.name: p for p in (root / "audio").rglob("*") if p.is_file() and folder_hint in str(p.parent)}


class LogMel(nn.Module):
    def __init__(self):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(RATE, n_fft=1024, hop_length=HOP, n_mels=64)

    def forward(self, wave):                  # (B, samples) -> (B, 64, 500)
        return torch.log(self.mel(wave) + 1e-5)[..., :N_MEL_FRAMES]


class PlainCRNN(nn.Module):
    def __init__(self, n_classes: int):
        super().__init__()
        layers, c_in = [], 1
        for c_out, pool in zip((16, 32, 64, 128), ((2, 4), (1, 4), (1, 2), (1, 2))):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                       nn.AvgPool2d(pool), nn.Dropout(0.1)]
            c_in = c_out
        self.cnn = nn.Sequential(*layers)       # 64 mel bins -> 1, 500 frames -> 250
        self.gru = nn.GRU(128, 128, num_layers=2, batch_first=True, bidirectional=True)
        self.strong = nn.Linear(256, n_classes)
        self.attention = nn.Linear(256, n_classes)

    def forward(self, x):                      # (B, T, F) standardised log-mel
        h = self.cnn(x.unsqueeze(1)).mean(dim=3)          # (B, C, T')
        h, _ = self.gru(h.transpose(1, 2))
        strong = torch.sigmoid(self.strong(h))            # (B, T', K)
        att = torch.softmax(self.attention(h), dim=1)
        weak = (strong * att).sum(1).clamp(1e-7, 1 - 1e-7)
        return strong, weak


def features(root: Path, rows_by_file: dict, hint: str, logmel: LogMel) -> tuple[list, torch.Tensor]:
    names, files = sorted(rows_by_file), audio_files(root, hint)
    missing = [n for n in names if n not in files]
    if missing:
        raise FileNotFoundError(f"{root}/audio: no *{hint}* folder holds {', '.join(missing[:5])} "
                                f"({len(missing)} files listed in the metadata)")
    waves = torch.from_numpy(np.stack([load_wave(files[n]) for n in names]))
    with torch.no_grad():
        feats = torch.cat([logmel(waves[i:i + 32]) for i in range(0, len(waves), 32)])
    return names, feats.transpose(1, 2)                   # (N, 500, 64)


def strong_targets(names, rows_by_file, classes) -> torch.Tensor:
    y = torch.zeros(len(names), N_MEL_FRAMES // 2, len(classes))
    for i, n in enumerate(names):
        for r in rows_by_file[n]:
            if not r.get("event_label"):
                continue
            a = int(float(r["onset"]) / FRAME)
            b = int(np.ceil(float(r["offset"]) / FRAME))
            y[i, a:b, classes.index(r["event_label"])] = 1
    return y


def locate(meta: Path, *candidates: str) -> Path:
    """The first existing TSV among the real-DESED and the DESED-lite names."""
    for c in candidates:
        if (meta / c).is_file():
            return meta / c
    raise FileNotFoundError(f"{meta}: none of {', '.join(candidates)}")


def group(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r["filename"], []).append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--minutes", type=float, default=25.0, help="training budget, on --clock")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: this process's CPU time (fair beside other jobs; with one thread "
                         "it is the quiet machine's wall time), wall: elapsed time")
    ap.add_argument("--eval-minutes", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=0,
                    help="clip resamples for 95%% intervals of the last scores (0: none)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    meta = a.data / "metadata"
    strong_tsv = locate(meta, "train/synthetic21_train/soundscapes.tsv", "synth_train.tsv")
    weak_tsv = locate(meta, "train/weak.tsv", "weak.tsv")
    val_tsv = locate(meta, "validation/validation.tsv", "validation.tsv")
    val_durations = locate(meta, "validation/validation_durations.tsv", "validation_durations.tsv")
    strong_rows, weak_rows = group(read_tsv(strong_tsv)), group(read_tsv(weak_tsv))
    classes = sorted({r["event_label"] for rs in strong_rows.values() for r in rs if r["event_label"]}
                     | {c for rs in weak_rows.values() for c in rs[0]["event_labels"].split(",") if c})
    t0 = time.time()
    logmel = LogMel()
    s_names, xs = features(a.data, strong_rows, "synth", logmel)
    w_names, xw = features(a.data, weak_rows, "weak", logmel)
    val_rows = group(read_tsv(val_durations))
    v_names, xv = features(a.data, val_rows, "validation", logmel)
    mean, std = xs.mean((0, 1)), xs.std((0, 1)) + 1e-5
    xs, xw, xv = (xs - mean) / std, (xw - mean) / std, (xv - mean) / std
    ys = strong_targets(s_names, strong_rows, classes)
    yw = torch.zeros(len(w_names), len(classes))
    for i, n in enumerate(w_names):
        for c in weak_rows[n][0]["event_labels"].split(","):
            yw[i, classes.index(c)] = 1
    truth, durations = ground_truth_from_tsv(val_tsv, val_durations, classes)
    data_seconds = time.time() - t0

    model = PlainCRNN(len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    last_scores: dict = {}

    def score() -> dict:
        model.eval()
        with torch.no_grad():
            probs = torch.cat([model(xv[i:i + 32])[0] for i in range(0, len(xv), 32)]).numpy()
        model.train()
        raw = {n: p for n, p in zip(v_names, probs)}
        med = {n: median_filter(p, size=(7, 1), mode="nearest") for n, p in raw.items()}
        last_scores["median"] = med
        out = {}
        for name, s in (("raw", raw), ("median", med)):
            r = evaluate_sed(s, FRAME, classes, truth, durations)
            out[name] = {"psds1": r["psds1"], "psds2": r["psds2"], "per_class_psds1": r["per_class"]["psds1"]}
        return out

    clock = time.process_time if a.clock == "cpu" else time.time
    history, step, t_train, next_eval = [], 0, clock(), a.eval_minutes * 60
    while True:
        elapsed = clock() - t_train
        if elapsed >= next_eval or elapsed >= a.minutes * 60:
            r = score()
            history.append({"step": step, "minutes": round(elapsed / 60, 2), **r})
            print(f"step {step:5d} {elapsed / 60:5.1f} min  PSDS1 raw {r['raw']['psds1']:.3f} "
                  f"median {r['median']['psds1']:.3f}  PSDS2 median {r['median']['psds2']:.3f}", flush=True)
            next_eval += a.eval_minutes * 60
            if elapsed >= a.minutes * 60:
                break
            t_train += clock() - t_train - elapsed           # scoring time is not training time
        i, j = rng.choice(len(xs), 12, replace=False), rng.choice(len(xw), 12, replace=False)
        strong, _ = model(xs[i])
        _, weak = model(xw[j])
        loss = F.binary_cross_entropy(strong, ys[i]) + F.binary_cross_entropy(weak, yw[j])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    if a.bootstrap:
        iv = bootstrap_intervals(last_scores["median"], FRAME, classes, truth, durations,
                                 n_resamples=a.bootstrap, seed=a.seed)
        history[-1]["median"]["intervals"] = {k: list(v) for k, v in iv.items()}
        print(f"last, 95% intervals over {a.bootstrap} clip resamples: {iv}")
    best = max(history, key=lambda h: h["median"]["psds1"])
    result = {"data": str(a.data), "classes": classes, "minutes": a.minutes, "clock": a.clock,
              "threads": a.threads,
              "seed": a.seed, "steps": step, "data_seconds": round(data_seconds, 1),
              "last": history[-1], "best": best, "history": history}
    if a.out:
        a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"last: PSDS1 {history[-1]['median']['psds1']:.3f} PSDS2 {history[-1]['median']['psds2']:.3f}; "
          f"best: PSDS1 {best['median']['psds1']:.3f} at {best['minutes']} min")


if __name__ == "__main__":
    main()
