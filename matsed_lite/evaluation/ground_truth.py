"""Ground truth for SED scoring: clip ids, events per clip, clip durations.

sed_scores_eval keys clips by audio id (the file name without ".wav"), wants
every clip's duration (false positives are counted per hour of audio) and
refuses overlapping events of one class; this module reads a strong TSV into
that form.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import soundfile as sf

from ..data.audio import AUDIO_EXTENSIONS
from ..data.desed_format import read_durations, read_strong


def audio_id(name: str) -> str:
    """The id sed_scores_eval keys clips by: the file name without ".wav"
    (and without any folder), so "val_001.wav", "audio/val_001.wav" and
    "val_001" are the same clip."""
    name = Path(str(name)).name
    return name[:-4] if name.lower().endswith(".wav") else name


def by_audio_id(d: Mapping, what: str) -> dict:
    """Strip ".wav" from the keys; two keys naming one clip are an error."""
    out = {}
    for k, v in d.items():
        i = audio_id(k)
        if i in out:
            raise ValueError(f"{what}: {k!r} and another key both name clip {i!r}")
        out[i] = v
    return out


def list_some(names, n: int = 5) -> str:
    """The first n names, sorted, and how many more: for error messages."""
    names = sorted(names)
    more = f" ... and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def ground_truth_from_tsv(strong_tsv, durations_tsv=None, classes: Sequence[str] | None = None,
                          durations: Mapping[str, float] | None = None):
    """A strong TSV -> (ground_truth, durations) as sed_scores_eval wants them.

    ground_truth  audio id -> [(onset, offset, label), ...]; a clip without
                  events has an empty list (it still counts: false positives
                  there cost). Overlapping events of a class are merged.
    durations     audio id -> seconds.

    PSDS needs each clip's length (false positives are counted per hour of
    audio), and a TSV of events does not give it. So durations are required:
    from ``durations_tsv`` (DESED's ``*_durations.tsv``) or the ``durations``
    dict. No 10 s default: DESED validation has ~100 shorter clips, and
    guessing would count their missing audio. The clip set is the strong TSV's
    clips plus every clip of the durations (real DESED lists event-free clips
    only in the durations file).
    """
    if durations_tsv is not None and durations is not None:
        raise ValueError("pass durations_tsv or durations, not both")
    if durations_tsv is not None:
        durations = read_durations(durations_tsv)
    if durations is None:
        raise ValueError("PSDS needs each clip's duration: pass durations_tsv "
                         "(e.g. metadata/validation_durations.tsv) or a durations dict")
    durs = {k: float(v) for k, v in by_audio_id(durations, "durations").items()}
    strong = read_strong(strong_tsv, classes=classes)
    gt: dict[str, list] = {cid: [] for cid in durs}
    missing = []
    for name in strong.filenames:
        cid = audio_id(name)
        if cid not in durs:
            missing.append(cid)
        gt.setdefault(cid, [])
    if missing:
        raise ValueError(f"{len(missing)} clip(s) of {strong_tsv} have no duration: {list_some(missing)}")
    for ev in strong.events:
        gt[audio_id(ev.filename)].append((ev.onset, ev.offset, ev.label))
    gt = {k: merge_overlapping_events(v) for k, v in gt.items()}
    return gt, durs


def merge_overlapping_events(events) -> list[tuple[float, float, str]]:
    """Merge events of one class that overlap or touch into one event.

    sed_scores_eval refuses ground truth with connected or overlapping events
    of a class (AssertionError), and synthetic soundscapes can contain them
    (two dog barks drawn on top of each other). What a detector can see is
    the union, "class active", so that is what is scored."""
    by_class: dict[str, list] = {}
    for on, off, label in events:
        by_class.setdefault(label, []).append([float(on), float(off)])
    out = []
    for label, spans in by_class.items():
        spans.sort()
        merged = [spans[0]]
        for on, off in spans[1:]:
            if on <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], off)
            else:
                merged.append([on, off])
        out += [(on, off, label) for on, off in merged]
    out.sort(key=lambda e: (e[0], e[2]))
    return out




def split_ground_truth(spec, classes):
    """(ground truth, durations) of a strongly labelled split (a ``SplitSpec``); durations from its
    durations TSV, else measured from the audio files."""
    if spec.durations_tsv is not None:
        return ground_truth_from_tsv(spec.tsv, spec.durations_tsv, classes=classes)
    names = set(read_strong(spec.tsv, classes=classes).filenames)
    names |= {p.name for p in Path(spec.audio_dir).iterdir()
              if p.suffix.lower() in AUDIO_EXTENSIONS}
    durations = {n: sf.info(str(Path(spec.audio_dir) / n)).duration for n in sorted(names)
                 if (Path(spec.audio_dir) / n).is_file()}
    return ground_truth_from_tsv(spec.tsv, classes=classes, durations=durations)

