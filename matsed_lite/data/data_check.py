"""Check a data set before training on it, and say exactly what is wrong (chapter 00).

A bad row in a TSV or a missing clip should stop you before a run, with a
message you can act on: the file, the row, the problem. ``check_dataset``
checks every split of a layout and returns a report; ``format_report`` prints
it. The torch Datasets run the same ``scan_split`` when they are built, so the
check and training can never disagree about what is valid.

Checked, per split:

* TSV: header, malformed rows, non-numeric / negative times, onset >= offset,
  labels outside the class list (when one is given) -- by ``desed_format``;
* offsets past the clip's end: the durations TSV where it lists the clip,
  else the audio file's own length; a listed duration longer than the audio
  (by more than 0.1 s) is itself a problem;
* every clip's audio file: present (a missing one names the TSV row that lists
  it), readable, not empty, no NaN or infinite samples (float files only: integer
  PCM cannot hold them);
* a split with no clips at all.

Real DESED always misses a few clips (YouTube videos disappear), so
``skip_missing=True`` counts missing files instead of calling them problems.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from . import desed_format as fmt
from .audio import AUDIO_EXTENSIONS, AudioError, audio_info, nonfinite_samples
from .layout import SplitSpec, layout_for
from .desed_format import DataError, Event, Problem

# A durations TSV may round; a duration longer than the audio by more than this is wrong.
DURATIONS_MISMATCH_S = 0.1


@dataclass
class SplitReport:
    """What the check found in one split.

    ``clips``: usable clips (listed, present, readable). ``listed``: clips the
    TSV names (or audio files in the folder). ``class_counts``: events per class
    for a strong split, clips per label for a weak one (usable clips only).
    """

    name: str
    kind: str
    tsv: str | None
    audio_dir: str
    listed: int = 0
    clips: int = 0
    hours: float = 0.0
    missing: int = 0
    missing_files: list[str] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    sample_rates: dict[int, int] = field(default_factory=dict)  # rate -> clips
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class DatasetReport:
    """Reports of all splits, plus problems with the data set as a whole."""

    root: str
    splits: dict[str, SplitReport] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.splits.values())

    @property
    def all_problems(self) -> list[Problem]:
        out = list(self.problems)
        for s in self.splits.values():
            out.extend(s.problems)
        return out


@dataclass
class SplitContents:
    """The usable part of a split, as the Datasets need it."""

    filenames: list[str]
    events: dict[str, list[Event]]          # strong: clip -> events
    weak: dict[str, tuple[str, ...]]        # weak: clip -> labels


def scan_split(spec: SplitSpec, classes: Sequence[str] | None = None,
               skip_missing: bool = False) -> tuple[SplitContents, SplitReport]:
    """Check one split and return its usable contents with the report.

    Used by ``check_split`` (which keeps the report) and by the Datasets
    (which keep the contents and raise if the report has problems).
    """
    report = SplitReport(spec.name, spec.kind, str(spec.tsv) if spec.tsv else None,
                         str(spec.audio_dir))
    problems = report.problems
    classes = list(classes) if classes is not None else None
    tsv = str(spec.tsv) if spec.tsv else None

    audio_ok = spec.audio_dir.is_dir()
    if not audio_ok:
        problems.append(Problem(str(spec.audio_dir), None,
                                f"audio folder of split {spec.name!r} not found"))

    # 1. Which clips does the split list, and where (row) is each first named?
    if spec.kind == "strong":
        listing, _ = fmt.parse_strong(spec.tsv)  # names only; problems come in step 3
        names = listing.filenames
        rows = fmt.first_rows(spec.tsv, fmt.STRONG_HEADER)
    elif spec.kind == "weak":
        weak_all, weak_problems = fmt.parse_weak(spec.tsv, classes)
        problems.extend(weak_problems)
        names = list(weak_all)
        rows = fmt.first_rows(spec.tsv, fmt.WEAK_HEADER)
    elif spec.tsv is not None:
        names, unl_problems = fmt.parse_unlabeled(spec.tsv)
        problems.extend(unl_problems)
        rows = fmt.first_rows(spec.tsv, fmt.UNLABELED_HEADER)
    else:
        names = sorted(p.name for p in spec.audio_dir.iterdir()
                       if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS) if audio_ok else []
        rows = {}
    report.listed = len(names)

    # 2. The audio files: present, readable, non-empty; their lengths.
    def where(name: str) -> str:
        return f"{tsv}, row {rows[name]}" if tsv and name in rows else (tsv or str(spec.audio_dir))

    audio_durations: dict[str, float] = {}
    kept: list[str] = []
    rates: Counter = Counter()
    seconds = 0.0
    for name in names if audio_ok else []:
        path = spec.audio_dir / name
        if not path.is_file():
            if skip_missing:
                report.missing += 1
                report.missing_files.append(name)
            else:
                problems.append(Problem(tsv or str(spec.audio_dir), rows.get(name),
                                        f"audio file not found: {path} (split {spec.name!r}; "
                                        "skip_missing=True skips missing clips)"))
            continue
        try:
            sr, n, _ = audio_info(path)
        except AudioError as exc:
            problems.append(Problem(str(path), None,
                                    f"{exc.reason} (listed in {where(name)})"))
            continue
        if n == 0:
            problems.append(Problem(str(path), None,
                                    f"audio file has zero samples (listed in {where(name)})"))
            continue
        try:
            bad = nonfinite_samples(path)
        except AudioError as exc:
            problems.append(Problem(str(path), None, f"{exc.reason} (listed in {where(name)})"))
            continue
        if bad:
            problems.append(Problem(str(path), None,
                                    f"{bad} NaN or infinite samples (listed in {where(name)}); "
                                    "repair or remove the file"))
            continue
        audio_durations[name] = n / sr
        rates[sr] += 1
        seconds += n / sr
        kept.append(name)

    # 3. Strong labels, checked against durations (TSV first, else the audio's).
    events: dict[str, list[Event]] = {}
    weak: dict[str, tuple[str, ...]] = {}
    durations = dict(audio_durations)
    if spec.durations_tsv is not None:
        tsv_durations, dur_problems = fmt.parse_durations(spec.durations_tsv)
        problems.extend(dur_problems)
        rows_d = fmt.first_rows(spec.durations_tsv, fmt.DURATIONS_HEADER)
        for name, d in tsv_durations.items():
            real = audio_durations.get(name)
            if real is not None and d > real + DURATIONS_MISMATCH_S:
                # The audio is what the model sees: events past its end are problems.
                problems.append(Problem(str(spec.durations_tsv), rows_d.get(name),
                                        f"duration {d:g} s is longer than the audio of {name} "
                                        f"({real:g} s)"))
                continue
            durations[name] = d
    if spec.kind == "strong":
        strong, strong_problems = fmt.parse_strong(spec.tsv, classes, durations)
        problems.extend(strong_problems)
        by_file = strong.events_by_file()
        events = {name: by_file.get(name, []) for name in kept}
        counts = Counter(ev.label for name in kept for ev in events[name])
    elif spec.kind == "weak":
        weak = {name: weak_all[name] for name in kept}
        counts = Counter(lab for name in kept for lab in weak[name])
    else:
        counts = Counter()

    if not kept and not problems:
        if report.missing:
            msg = f"split {spec.name!r} has no clips: all {report.missing} listed audio files are missing"
        elif spec.tsv is None:
            msg = (f"split {spec.name!r} has no clips: no "
                   f"{'/'.join(AUDIO_EXTENSIONS)} files in {spec.audio_dir}")
        else:
            msg = f"split {spec.name!r} has no clips: the TSV lists none"
        problems.append(Problem(tsv or str(spec.audio_dir), None, msg))

    # File-level problems first, then rows in file order, whatever step found them.
    problems.sort(key=lambda p: (p.path, p.row if p.row is not None else 0))
    report.clips = len(kept)
    report.hours = seconds / 3600.0
    report.class_counts = dict(sorted(counts.items()))
    report.sample_rates = dict(sorted(rates.items()))
    return SplitContents(kept, events, weak), report


def check_split(spec: SplitSpec, classes: Sequence[str] | None = None,
                skip_missing: bool = False) -> SplitReport:
    """Check one split; see the module docstring for what is checked."""
    return scan_split(spec, classes, skip_missing)[1]


def check_dataset(root_or_layout, classes: Sequence[str] | None = None,
                  skip_missing: bool = False) -> DatasetReport:
    """Check every split of a data folder (layout picked by ``layout_for``) or layout dict.

    ``classes``: if given, labels outside it are problems; if None, any label
    is accepted. Never raises for bad data: everything goes into the report.
    """
    if isinstance(root_or_layout, Mapping):
        layout = dict(root_or_layout)
        paths = [str(p) for s in layout.values() for p in (s.audio_dir, s.tsv) if p is not None]
        try:
            root = os.path.commonpath(paths) if paths else ""
        except ValueError:  # absolute and relative paths mixed
            root = ""
    else:
        root = str(root_or_layout)
        try:
            layout = layout_for(root_or_layout)
        except DataError as exc:
            return DatasetReport(root, {}, list(exc.problems))
    report = DatasetReport(root)
    if not layout:
        report.problems.append(Problem(root, None, "the layout has no splits"))
    for name, spec in layout.items():
        report.splits[name] = check_split(spec, classes, skip_missing)
    return report


# ---------------------------------------------------------------------------
# printing

def _table(header: list[str], rows: list[list[str]], n_text: int = 1) -> list[str]:
    """Plain-text table: the first ``n_text`` columns left-aligned, numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt_row = lambda r: "  ".join(  # noqa: E731
        c.ljust(w) if i < n_text else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return [fmt_row(header), "  ".join("-" * w for w in widths)] + [fmt_row(r) for r in rows]


def format_report(report: "DatasetReport | SplitReport", max_problems: int | None = 100) -> str:
    """A readable summary: splits (clips, hours, missing), events per class, problems.

    Each problem is printed as ``path, row N: message``. ``max_problems`` caps
    the problems shown per split (None: all); the count is always given.
    """
    if isinstance(report, SplitReport):
        report = DatasetReport(report.audio_dir, {report.name: report})
    lines = [f"Data set: {report.root}"]
    splits = list(report.splits.values())
    if splits:
        lines.append("")
        rows = []
        for s in splits:
            rates = ", ".join(f"{r // 1000 if r % 1000 == 0 else r / 1000:g} kHz" for r in s.sample_rates)
            rows.append([s.name, s.kind, str(s.clips), str(s.missing), f"{s.hours:.3f}",
                         rates or "-", str(len(s.problems))])
        lines += _table(["split", "kind", "clips", "missing", "hours", "sample rates", "problems"], rows, 2)

        labelled = [s for s in splits if s.kind in ("strong", "weak")]
        classes = sorted({c for s in labelled for c in s.class_counts})
        if classes:
            lines += ["", "Events per class (strong: events, weak: clips with the label)", ""]
            head = ["class"] + [f"{s.name} ({s.kind})" for s in labelled]
            body = [[c] + [str(s.class_counts.get(c, 0)) for s in labelled] for c in classes]
            body.append(["total"] + [str(sum(s.class_counts.values())) for s in labelled])
            lines += _table(head, body)

        for s in splits:
            if s.missing:
                shown = ", ".join(s.missing_files[:5])
                more = f", ... ({s.missing - 5} more)" if s.missing > 5 else ""
                lines += ["", f"{s.name}: {s.missing} missing audio file(s) skipped "
                              f"(in {s.audio_dir}): {shown}{more}"]

    groups = [("data set", report.problems)] + [(s.name, s.problems) for s in splits]
    total = sum(len(p) for _, p in groups)
    for name, probs in groups:
        if not probs:
            continue
        lines += ["", f"Problems in {name} ({len(probs)}):"]
        shown = probs if max_problems is None else probs[:max_problems]
        lines += [f"  {p}" for p in shown]
        if len(probs) > len(shown):
            lines.append(f"  ... and {len(probs) - len(shown)} more")
    lines += ["", "OK: no problems found." if total == 0 else
              f"FAILED: {total} problem(s) found."]
    return "\n".join(lines)
