"""Splits and data-set layouts: where a DESED-format folder keeps each split (chapter 00).

A *split* is a folder of audio plus (usually) a TSV of labels, of one of three
kinds: strong (onset/offset/label per event), weak (clip labels only) and
unlabeled. ``SplitSpec`` says where a split's files are; ``desed_lite_layout``
and ``real_desed_layout`` give the specs for our synthetic set and for the real
DESED tree, ``layout_for`` picks one by looking at a folder, and
``infer_classes`` reads the class list from the labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .desed_format import DataError, Problem, parse_strong, parse_weak

KINDS = ("strong", "weak", "unlabeled")


@dataclass(frozen=True)
class SplitSpec:
    """Where one split lives.

    name           e.g. "synth_train"; used in reports and errors
    kind           "strong", "weak" or "unlabeled"
    audio_dir      folder holding the clips the TSV names
    tsv            the labels TSV; may be None only for "unlabeled", which then
                   means "every .wav/.flac/.ogg file in audio_dir"
    durations_tsv  optional "filename duration" TSV; offsets are checked against
                   it, and against the audio file's own length where it is absent
    """

    name: str
    kind: str
    audio_dir: Path
    tsv: Path | None = None
    durations_tsv: Path | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"split {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.tsv is None and self.kind != "unlabeled":
            raise ValueError(f"split {self.name!r}: a {self.kind} split needs a TSV")
        # Accept strings; store Paths (frozen dataclass, hence object.__setattr__).
        object.__setattr__(self, "audio_dir", Path(self.audio_dir))
        if self.tsv is not None:
            object.__setattr__(self, "tsv", Path(self.tsv))
        if self.durations_tsv is not None:
            object.__setattr__(self, "durations_tsv", Path(self.durations_tsv))


# ---------------------------------------------------------------------------
# layouts

DESED_LITE_SPLITS = {
    "synth_train": "strong",
    "weak": "weak",
    "unlabeled": "unlabeled",
    "validation": "strong",
}


def desed_lite_layout(root) -> dict[str, SplitSpec]:
    """The layout ``desed_lite`` writes::

        ROOT/audio/<split>/<file>.wav
        ROOT/metadata/<split>.tsv              (strong, weak or unlabeled TSV)
        ROOT/metadata/<split>_durations.tsv    (used when present)

    for the splits synth_train (strong), weak, unlabeled and validation (strong).
    """
    root = Path(root)
    out = {}
    for name, kind in DESED_LITE_SPLITS.items():
        dur = root / "metadata" / f"{name}_durations.tsv"
        out[name] = SplitSpec(name, kind, root / "audio" / name,
                              root / "metadata" / f"{name}.tsv",
                              dur if dur.is_file() else None)
    return out


# (name, kind, audio folder, TSV, durations TSV) relative to the DESED root.
REAL_DESED_SPLITS = (
    ("synth_train", "strong", "audio/train/synthetic21_train/soundscapes_16k",
     "metadata/train/synthetic21_train/soundscapes.tsv", None),
    ("weak", "weak", "audio/train/weak_16k", "metadata/train/weak.tsv", None),
    ("unlabeled", "unlabeled", "audio/train/unlabel_in_domain_16k", None, None),
    ("validation", "strong", "audio/validation/validation_16k",
     "metadata/validation/validation.tsv", "metadata/validation/validation_durations.tsv"),
)
REAL_DESED_STRONG_REAL = ("strong_real", "strong", "audio/train/strong_label_real_16k",
                          "metadata/train/audioset_strong.tsv", None)


def real_desed_layout(root) -> dict[str, SplitSpec]:
    """The real DESED tree, as the DCASE 2023 task 4 baseline uses it.

    ROOT is the folder holding ``audio/`` and ``metadata/`` (the baseline's
    ``data/dcase/dataset``). Paths below are relative to it; the ``_16k``
    folders are the 16 kHz copies the baseline's resampling script makes
    (``load_audio`` resamples anyway, so 44.1 kHz folders work if you point
    a SplitSpec at them).

    =========== ========= ============================================== ==================================================
    split       kind      audio folder                                   TSV (+ durations)
    =========== ========= ============================================== ==================================================
    synth_train strong    audio/train/synthetic21_train/soundscapes_16k  metadata/train/synthetic21_train/soundscapes.tsv
    weak        weak      audio/train/weak_16k                           metadata/train/weak.tsv
    unlabeled   unlabeled audio/train/unlabel_in_domain_16k              none: every audio file of the folder
    validation  strong    audio/validation/validation_16k                metadata/validation/validation.tsv
                                                                         + metadata/validation/validation_durations.tsv
    strong_real strong    audio/train/strong_label_real_16k              metadata/train/audioset_strong.tsv
    =========== ========= ============================================== ==================================================

    The first four are always returned (a missing one then shows up in the data
    check); ``strong_real`` only when its folder or TSV exists, since many
    DESED downloads lack the AudioSet strong set.
    """
    root = Path(root)
    out = {}
    for name, kind, audio, tsv, dur in REAL_DESED_SPLITS + (REAL_DESED_STRONG_REAL,):
        if name == "strong_real" and not ((root / audio).is_dir() or (root / tsv).is_file()):
            continue
        out[name] = SplitSpec(name, kind, root / audio,
                              root / tsv if tsv else None,
                              root / dur if dur else None)
    return out


def layout_for(root) -> dict[str, SplitSpec]:
    """Pick the layout of a data folder: DESED-lite, else real DESED, else an error.

    DESED-lite is recognised by any ``metadata/<split>.tsv`` of its splits,
    real DESED by any of its metadata TSVs. Raises ``DataError`` listing every
    path it looked for.
    """
    root = Path(root)
    lite = [root / "metadata" / f"{name}.tsv" for name in DESED_LITE_SPLITS]
    if any(p.is_file() for p in lite):
        return desed_lite_layout(root)
    real = [root / s[3] for s in REAL_DESED_SPLITS + (REAL_DESED_STRONG_REAL,) if s[3]]
    real += [root / s[4] for s in REAL_DESED_SPLITS if s[4]]
    if any(p.is_file() for p in real):
        return real_desed_layout(root)
    looked = ", ".join(str(p.relative_to(root)) for p in lite + real)
    why = "folder not found" if not root.is_dir() else "no DESED-lite or real DESED metadata"
    raise DataError([Problem(str(root), None, f"{why}; looked for any of: {looked}")])


def _as_specs(layout_or_specs) -> list[SplitSpec]:
    if isinstance(layout_or_specs, SplitSpec):
        return [layout_or_specs]
    if isinstance(layout_or_specs, (str, Path)):
        return list(layout_for(layout_or_specs).values())
    if isinstance(layout_or_specs, Mapping):
        return list(layout_or_specs.values())
    return list(layout_or_specs)


def infer_classes(layout_or_specs) -> list[str]:
    """Sorted labels found in the strong and weak TSVs of a layout.

    Accepts a root folder, a layout dict, a list of SplitSpecs or one SplitSpec.
    Sorted, so that the same data always gives the same class order (and the
    ten DESED labels come out in DCASE's order). Rows with problems are
    skipped here; the data check reports them. Pass one class list to every
    split of a run: inferring per split can give different lists.
    """
    specs = _as_specs(layout_or_specs)
    labels: set[str] = set()
    read = []
    for spec in specs:
        if spec.kind == "strong":
            strong, _ = parse_strong(spec.tsv)
            labels.update(ev.label for ev in strong.events)
            read.append(str(spec.tsv))
        elif spec.kind == "weak":
            weak, _ = parse_weak(spec.tsv)
            for labs in weak.values():
                labels.update(labs)
            read.append(str(spec.tsv))
    if not labels:
        where = ", ".join(read) if read else "no strong or weak split given"
        raise ValueError(f"no event labels found to infer the classes from ({where}); "
                         "pass the class list explicitly")
    return sorted(labels)
