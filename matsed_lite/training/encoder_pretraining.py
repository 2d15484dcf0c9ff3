"""Pre-training PaSST-lite as an audio tagger: the course's stand-in for AudioSet (chapter 01).

MAT-SED starts from PaSST-S, trained on AudioSet's two million weakly
labelled clips. We cannot ship that, so PaSST-lite is trained the same way on
the DESED-lite *tagging* corpus: weakly labelled clips with their own seeds,
disjoint from every split the SED stages use, scored by macro mAP on the
held-out ``tagging_eval`` split.

The recipe (``pretrain_encoder``):

* generate the tagging splits if missing, compute their log-mels once and keep
  them in memory (1,200 clips of 64 x 500 float32 are about 150 MB);
* multi-label BCE on the class-token logits, structured patchout on;
* cheap augmentation: a random circular time roll per clip (tags do not
  depend on *when* an event happens) and, on half the batches, mixup with
  soft labels (as PaSST's AudioSet training);
* AdamW, linear warm-up then cosine decay, best epoch by tagging_eval mAP;
* writes ``encoder.pt`` (fp16 state dict) and ``recipe.json``.

``corpus="broad"`` trains on the streamed broad corpus instead (54 classes,
fresh clips every epoch, see ``broad_pretraining``); it is still scored on
tagging_eval over the DESED columns.

``tagging_check`` scores an encoder on the first clips of tagging_eval,
regenerated from scratch: the shipped weights record that number, and a test
recomputes it, so a generator change that makes the weights stale fails CI.
A broad-corpus encoder is scored on its DESED columns.
"""
from __future__ import annotations

import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import SplitSpec, WeakDataset
from ..data.desed_lite import generate_desed_lite
from ..data.features import LogMel
from ..data.tagging_corpus import DESED_INDICES, FAMILY_CLASSES, tagger_classes
from ..evaluation.tagging import average_precision_per_class
from ..files import save_torch, write_json
from ..models.passt_lite import PaSSTLite, load_pretrained_encoder
from ..presets import (DESED_CLASSES, ENCODER_DATA_WORKERS, ENCODER_LR, ENCODER_MIXUP_ALPHA,
                       ENCODER_MIXUP_P, ENCODER_WARMUP_EPOCHS, ENCODER_WEIGHT_DECAY, Preset,
                       get_preset)
from ..runtime import seed_everything
from .broad_pretraining import (broad_recipe_fields, broad_train_data, broad_validation_mels,
                                check_corpus)
from .engine import check_settings, fit, load_checkpoint, warmup_cosine

CHECK_CLIPS = 64          # clips of tagging_eval in the shipped-weights check
CHECK_TOLERANCE = 0.02    # allowed |mAP - recorded| (CPU/GPU kernels differ slightly)


# ---------------------------------------------------------------------------
# data

def tagging_spec(root, split: str) -> SplitSpec:
    root = Path(root)
    dur = root / "metadata" / f"{split}_durations.tsv"
    return SplitSpec(split, "weak", root / "audio" / split, root / "metadata" / f"{split}.tsv",
                     dur if dur.is_file() else None)


@torch.no_grad()
def load_tagging_mels(root, preset: "Preset | str", split: str, n: int | None = None,
                      batch_size: int = 64, progress: bool = False):
    """Log-mels (N, n_mels, n_frames) float32 and weak targets (N, K) of a tagging split,
    in TSV order (the first ``n`` clips if given). Computed once, kept in memory."""
    p = get_preset(preset)
    ds = WeakDataset(tagging_spec(root, split), p, DESED_CLASSES)
    n = len(ds) if n is None else min(n, len(ds))
    logmel = LogMel(p)
    mels, targets = [], []
    from tqdm.auto import tqdm
    for i in tqdm(range(0, n, batch_size), desc=f"log-mel {split}", disable=not progress):
        items = [ds[j] for j in range(i, min(n, i + batch_size))]
        mels.append(logmel(torch.stack([it["waveform"] for it in items])))
        targets.append(torch.stack([it["weak"] for it in items]))
    return torch.cat(mels), torch.cat(targets)


class MelTagging(torch.utils.data.Dataset):
    """Cached log-mels and weak labels as a Dataset of {"mel", "weak"} items."""

    def __init__(self, mels: torch.Tensor, targets: torch.Tensor):
        self.mels, self.targets = mels, targets

    def __len__(self) -> int:
        return len(self.mels)

    def __getitem__(self, i: int) -> dict:
        return {"mel": self.mels[i], "weak": self.targets[i]}


# ---------------------------------------------------------------------------
# scoring

@torch.no_grad()
def score_tagger(model: torch.nn.Module, mels: torch.Tensor, targets: torch.Tensor,
                 batch_size: int = 64, device=None) -> dict:
    """{"mAP", "per_class_ap"} of a tagger (logits = model(mel)) on cached log-mels.

    ``targets`` has a column per class of ``tagger_classes(K)`` (K = 10: DESED,
    54: the broad corpus). A broad-corpus tagger (54 outputs) scored against DESED
    targets (10 columns) is scored on its DESED columns (``DESED_INDICES``).
    ``per_class_ap`` is keyed by class name; None for a class without positives."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores = torch.cat([torch.sigmoid(model(mels[i:i + batch_size].to(device)).float()).cpu()
                        for i in range(0, len(mels), batch_size)])
    model.train(was_training)
    classes = tagger_classes(targets.shape[1])
    if scores.shape[1] != targets.shape[1]:
        if classes != tuple(DESED_CLASSES) or scores.shape[1] != len(FAMILY_CLASSES):
            raise ValueError(f"a tagger of {scores.shape[1]} outputs cannot be scored against "
                             f"{targets.shape[1]} target columns")
        scores = scores[:, list(DESED_INDICES)]
    ap = average_precision_per_class(scores, targets)
    valid = ap[~np.isnan(ap)]
    return {"mAP": float(valid.mean()) if len(valid) else float("nan"),
            "per_class_ap": {c: (None if np.isnan(a) else float(a))
                             for c, a in zip(classes, ap)}}


def tagging_check(model: torch.nn.Module, preset: "Preset | str" = "cpu", seed: int = 0,
                  n: int = CHECK_CLIPS, workdir=None) -> dict:
    """Regenerate the first ``n`` tagging_eval clips (seed ``seed``) into ``workdir``
    (a temp folder if None) and score ``model`` on them, on the CPU in float32.

    The shipped weights record this number; ``tests/test_shipped_encoder.py``
    recomputes it the same way."""
    p = get_preset(preset, n_tagging_eval=n)
    ctx = tempfile.TemporaryDirectory() if workdir is None else None
    root = Path(ctx.name if ctx else workdir)
    try:
        generate_desed_lite(root, p, seed=seed, splits=["tagging_eval"], progress=False)
        mels, targets = load_tagging_mels(root, p, "tagging_eval", n=n)
    finally:
        if ctx:
            ctx.cleanup()
    model = model.to("cpu").float()
    out = score_tagger(model, mels, targets, device=torch.device("cpu"))
    out.update(split="tagging_eval", n_clips=n, seed=seed, preset=p.name)
    return out


# ---------------------------------------------------------------------------
# training

def roll_and_mix(mel: torch.Tensor, y: torch.Tensor, strong: torch.Tensor | None = None,
                 known: torch.Tensor | None = None):
    """The pre-training augmentation: roll each clip of (B, M, T) circularly in time by
    its own random shift, then on ENCODER_MIXUP_P of the batches mix it with a shuffled
    copy. Clip labels ``y`` (B, K) are mixed alike; frame labels ``strong`` (B, T, K),
    if given, are rolled and mixed with their audio. ``known`` (B,) bool, if given, says
    which clips have real frame labels (encoder adaptation mixes strong and weak clips):
    a mixed clip keeps them only if both of its clips had. Returns (mel, y, strong, known)."""
    b, _, t = mel.shape
    shift = torch.randint(0, t, (b, 1), device=mel.device)
    idx = (torch.arange(t, device=mel.device)[None] - shift) % t   # (B, T)
    mel = mel.gather(2, idx[:, None].expand_as(mel))
    if strong is not None:
        strong = strong.gather(1, idx[..., None].expand_as(strong))
    if torch.rand(()) < ENCODER_MIXUP_P:
        lam = float(np.random.beta(ENCODER_MIXUP_ALPHA, ENCODER_MIXUP_ALPHA))
        perm = torch.randperm(b, device=mel.device)
        mel = lam * mel + (1 - lam) * mel[perm]
        y = lam * y + (1 - lam) * y[perm]
        if strong is not None:
            strong = lam * strong + (1 - lam) * strong[perm]
        if known is not None:
            known = known & known[perm]
    return mel, y, strong, known


def tagging_step(model, batch, state):
    """One multi-label tagging step: roll, optional mixup, BCE with logits."""
    mel, y, _, _ = roll_and_mix(batch["mel"], batch["weak"])
    logits = model(mel)
    loss = F.binary_cross_entropy_with_logits(logits.float(), y)
    return loss, {}


class StrongTagger(nn.Module):
    """PaSST-lite with a frame head beside its tagging head, for strong pre-training
    (``frame_loss > 0``). Only ``encoder`` ships; the frame head is dropped, as the
    tagging head is for SED. ``forward`` is the encoder's tagging forward, so
    ``score_tagger`` scores it unchanged."""

    def __init__(self, encoder: PaSSTLite, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.frame_head = nn.Linear(encoder.dim, n_classes)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.encoder(mel)


def token_targets(strong: torch.Tensor, patch: int = 16, stride: int = 10) -> torch.Tensor:
    """Frame labels (B, T, K) -> soft labels per time patch (B, T', K): the share of
    each patch's ``patch`` frames in which the class is active (T' as the patch
    embedding's output: (T - patch) // stride + 1)."""
    return F.avg_pool1d(strong.transpose(1, 2).float(), patch, stride).transpose(1, 2)


def make_strong_tagging_step(frame_loss: float):
    """A tagging step that also trains every time token to say which classes sound in
    its patch: BCE(tagging) + ``frame_loss`` x BCE(frame head on the feature block's
    frequency-averaged, ``frame_norm``-ed tokens, ``token_targets``). The roll and
    the mixup move the strong labels with the audio; patchout drops the same time
    columns from tokens and labels. AudioSet's strong labels do this for PaSST
    (Schmid et al. 2024): frame-level supervision of the encoder is what a detector
    reads its features for."""

    def step(model: StrongTagger, batch, state):
        mel, y, strong, _ = roll_and_mix(batch["mel"], batch["weak"], batch["strong"])
        enc = model.encoder
        logits, tokens, keep_t = enc.tag_and_tokens(mel)
        frames = enc.frame_norm(tokens).mean(dim=1)                    # (B, T', D)
        target = token_targets(strong, enc.patch, enc.stride)[:, keep_t]
        tag = F.binary_cross_entropy_with_logits(logits.float(), y)
        frame = F.binary_cross_entropy_with_logits(model.frame_head(frames).float(), target)
        return tag + frame_loss * frame, {"tag_loss": tag.detach(), "frame_loss": frame.detach()}

    return step


def warm_start(model: PaSSTLite, source: PaSSTLite, classes) -> None:
    """Copy a pre-trained encoder into ``model``: every weight but the tagging head,
    and the head's rows of the classes both know (by name). A from-scratch
    Transformer on the 54-class broad corpus sits at the constant prevalence
    predictor for hundreds of steps (measured at cpu: tagging_eval mAP 0.27, 0.23,
    0.26 after epochs 1-3); the shipped encoder starts it from features that work."""
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise ValueError(f"warm start: the encoders differ (missing {missing}, "
                         f"unexpected {unexpected})")
    src_classes = tagger_classes(source.head.out_features)
    with torch.no_grad():
        for i, c in enumerate(classes):
            if c in src_classes:
                j = src_classes.index(c)
                model.head.weight[i] = source.head.weight[j]
                model.head.bias[i] = source.head.bias[j]


def _command(data_root, preset, out_dir, seed, epochs, resume, corpus="desed",
             clips_per_epoch=None, workers=ENCODER_DATA_WORKERS) -> str:
    cmd = f"matsed-lite pretrain-encoder --data {data_root} --preset {preset} --out {out_dir} --seed {seed}"
    if epochs is not None:
        cmd += f" --epochs {epochs}"
    if corpus != "desed":
        cmd += f" --corpus {corpus} --clips-per-epoch {clips_per_epoch} --workers {workers}"
    return cmd + (" --resume" if resume else "")


def pretrain_encoder(data_root, preset: "Preset | str", out_dir, seed: int = 0,
                     epochs: int | None = None, resume: bool = False,
                     progress: bool = True, corpus: str = "desed",
                     clips_per_epoch: int | None = None,
                     workers: int = ENCODER_DATA_WORKERS, init=None,
                     frame_loss: float = 0.0, stop_after_epoch: int | None = None) -> dict:
    """Pre-train PaSST-lite as a tagger; returns the recipe dict.

    ``corpus="desed"``: on DESED-lite's ``tagging`` split (generated under
    ``data_root`` if missing, data seed = ``seed``), ``epochs`` defaulting to
    the preset's ``encoder_epochs``. ``corpus="broad"``: on ``clips_per_epoch``
    (default: the preset's ``encoder_clips_per_epoch``) fresh streamed clips of
    the broad corpus per epoch, rendered by ``workers`` DataLoader workers, with a
    54-class head; ``epochs`` defaults to ``encoder_broad_epochs``. Both are
    scored every epoch on ``tagging_eval`` (``val/mAP``, which picks the best
    epoch); broad runs also on held-out broad clips (``val/broad_mAP``).
    ``init``: None trains from scratch; "shipped" or a pretrain-encoder run folder
    starts from those weights (``warm_start``).
    ``frame_loss`` > 0 (broad corpus only): strong pre-training, the tagging loss
    plus this weight times a per-token frame loss on the streamed clips' event
    times (``make_strong_tagging_step``).
    ``stop_after_epoch``: end after that epoch of the ``epochs``-long schedule
    and export the best epoch so far (the recipe's ``epochs_done`` says where it
    stopped); ``resume`` later continues the same schedule.

    Trains with the engine (checkpoints and log in ``out_dir/run``, resumable
    exactly), and writes ``out_dir/encoder.pt`` (the best epoch's weights as an
    fp16 state dict) and ``out_dir/recipe.json``."""
    p = get_preset(preset)
    broad = check_corpus(corpus) == "broad"
    frame_loss = float(frame_loss)
    if not (frame_loss >= 0.0 and np.isfinite(frame_loss)):
        raise ValueError(f"frame_loss must be a finite number >= 0, got {frame_loss}")
    if frame_loss and not broad:
        raise ValueError("frame_loss needs the broad corpus (--corpus broad): DESED-lite's "
                         "tagging split carries clip labels only")
    epochs = int(epochs if epochs is not None
                 else p.encoder_broad_epochs if broad else p.encoder_epochs)
    clips_per_epoch = int(clips_per_epoch or p.encoder_clips_per_epoch) if broad else None
    out_dir, data_root = Path(out_dir), Path(data_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings(out_dir / "run", {"stage": "encoder_pretraining", "preset": p.name,
                                     "seed": seed, "epochs": epochs, "corpus": corpus,
                                     "clips_per_epoch": clips_per_epoch,
                                     "init": None if init is None else str(init),
                                     "data_root": str(data_root),
                                     # runs made before strong pre-training have no key
                                     **({"frame_loss": frame_loss} if frame_loss else {})},
                   resume)
    t_start = time.perf_counter()
    generate_desed_lite(data_root, p, seed=seed, progress=progress,
                        splits=["tagging_eval"] if broad else ["tagging", "tagging_eval"])
    eval_mels, eval_y = load_tagging_mels(data_root, p, "tagging_eval", progress=progress)
    batch = p.encoder_batch
    if broad:
        train_data = broad_train_data(p, seed, clips_per_epoch, batch, workers,
                                      strong=frame_loss > 0)
        val_mels, val_y = broad_validation_mels(p, seed, p.encoder_broad_val_clips, workers)
        steps_per_epoch = len(train_data)
    else:
        train_mels, train_y = load_tagging_mels(data_root, p, "tagging", progress=progress)
        train_data = MelTagging(train_mels, train_y)
        steps_per_epoch = -(-len(train_mels) // batch)
    t_data = time.perf_counter() - t_start

    seed_everything(seed)
    n_classes = len(FAMILY_CLASSES) if broad else len(DESED_CLASSES)
    model = PaSSTLite.from_preset(p, n_classes=n_classes)
    if init is not None:
        warm_start(model, load_pretrained_encoder(
            p, weights_dir=None if str(init) == "shipped" else init),
            tagger_classes(n_classes))
    encoder = model
    if frame_loss:
        model = StrongTagger(encoder, n_classes)
    decay = [q for n, q in model.named_parameters() if q.ndim >= 2 and "pos" not in n
             and "token" not in n]
    no_decay = [q for n, q in model.named_parameters() if not (q.ndim >= 2 and "pos" not in n
                                                                and "token" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": ENCODER_WEIGHT_DECAY},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=ENCODER_LR)
    scheduler = warmup_cosine(optimizer, epochs * steps_per_epoch,
                              ENCODER_WARMUP_EPOCHS * steps_per_epoch, start_factor=0.01, final_factor=0.01)

    def evaluate(m, state):
        out = {"val/mAP": score_tagger(m, eval_mels, eval_y, device=state.device)["mAP"]}
        if broad:
            out["val/broad_mAP"] = score_tagger(m, val_mels, val_y, device=state.device)["mAP"]
        return out

    step = make_strong_tagging_step(frame_loss) if frame_loss else tagging_step
    result = fit(model, step, train_data, optimizer=optimizer,
                 epochs=epochs, out_dir=out_dir / "run", evaluate=evaluate, scheduler=scheduler,
                 batch_size=batch, seed=seed, grad_clip=5.0, monitor="val/mAP", mode="max",
                 resume=resume, progress=progress, stop_after_epoch=stop_after_epoch,
                 desc="pretrain-encoder")

    best = load_checkpoint(result["best_checkpoint"])
    weights = best["model"]
    if frame_loss:  # ship the encoder alone
        weights = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
    model = encoder
    half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    ctx = result["state"].dist  # under torchrun rank 0 writes, the others wait for it
    if ctx.is_main:
        save_torch(half, out_dir / "encoder.pt")
    # Score the weights exactly as shipped (fp16-rounded) on the whole eval split.
    model.load_state_dict({k: v.float() for k, v in half.items()})
    model.to("cpu")
    final = score_tagger(model, eval_mels, eval_y, device=torch.device("cpu"))
    check = tagging_check(model, p, seed=seed, n=CHECK_CLIPS)
    check["tolerance"] = CHECK_TOLERANCE
    data = {} if broad else {
        "tagging": len(train_mels), "tagging_eval": len(eval_mels),
        "train_prevalence": {c: float(v) for c, v in zip(DESED_CLASSES, train_y.mean(0))}}
    recipe = {
        "command": _command(data_root, p.name, out_dir, seed, epochs, resume, corpus,
                            clips_per_epoch, workers) + (f" --init {init}" if init else "")
                   + (f" --frame-loss {frame_loss:g}" if frame_loss else "")
                   + (f" --stop-after-epoch {stop_after_epoch}" if stop_after_epoch else ""),
        "corpus": corpus,
        "init": None if init is None else str(init),
        "frame_loss": frame_loss,
        "preset": p.name,
        "seed": seed,
        "epochs": epochs,
        "epochs_done": result["epochs_done"],
        "best_epoch": result["best_epoch"],
        "batch_size": batch,
        "optimizer": {"name": "AdamW", "lr": ENCODER_LR, "weight_decay": ENCODER_WEIGHT_DECAY,
                      "schedule": f"warm-up {ENCODER_WARMUP_EPOCHS} epoch, cosine to 0.01x",
                      "grad_clip": 5.0},
        "augmentation": {"time_roll": "uniform circular", "mixup_p": ENCODER_MIXUP_P,
                         "mixup_alpha": ENCODER_MIXUP_ALPHA, "patchout_time": p.patchout_time,
                         "patchout_freq": p.patchout_freq},
        "data": data,
        # A constant scorer's AP equals the class prevalence: the mAP's chance level.
        "eval_prevalence": {c: float(v) for c, v in zip(DESED_CLASSES, eval_y.mean(0))},
        "mAP": final["mAP"],
        "per_class_ap": final["per_class_ap"],
        "best_epoch_val_mAP_fp32": result["best_metric"],
        "history": [{k: v for k, v in h.items()
                     if k in ("epoch", "train/loss", "val/mAP", "val/broad_mAP", "lr")}
                    for h in result["history"]],
        "check": check,
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "data_seconds": round(t_data, 1),
        "train_seconds": round(result["seconds"], 1),
        "machine": {"platform": platform.platform(terse=True), "machine": platform.machine(),
                    "device": result["device"], "cpu_threads": torch.get_num_threads(),
                    "python": sys.version.split()[0]},
        "torch": torch.__version__,
        "encoder_geometry": list(p.encoder_geometry),
        "encoder_feature_block": p.encoder_feature_block,
        "model_config": model.config,
        "n_parameters": sum(q.numel() for q in model.parameters()),
        "classes": list(DESED_CLASSES),
    }
    if broad:
        broad_fields = broad_recipe_fields(
            seed, epochs, clips_per_epoch, workers, val_y,
            score_tagger(model, val_mels, val_y, device=torch.device("cpu")))
        recipe["data"] = {"tagging_eval": len(eval_mels), **broad_fields.pop("data")}
        recipe.update(broad_fields)
    if ctx.is_main:
        write_json(out_dir / "recipe.json", recipe)
    ctx.barrier()
    return recipe
