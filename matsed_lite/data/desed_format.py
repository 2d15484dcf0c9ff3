"""The DESED metadata format: reading and writing its four kinds of TSV (chapter 00).

strong      filename  onset  offset  event_label   one row per event (seconds)
weak        filename  event_labels                 labels comma-separated
unlabeled   filename
durations   filename  duration                     seconds

Every reader checks each row and reports problems as ``Problem`` objects that
name the file, the row (the line number in the file, the header being line 1)
and what is wrong. ``parse_*`` functions return the problems so that a data
check can list all of them; ``read_*`` functions raise ``DataError`` holding
them. Writers write to a temporary file and rename it, so a TSV is either
complete or absent, never half-written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterable, Mapping, Sequence

from ..files import write_text

STRONG_HEADER = ("filename", "onset", "offset", "event_label")
WEAK_HEADER = ("filename", "event_labels")
UNLABELED_HEADER = ("filename",)
DURATIONS_HEADER = ("filename", "duration")

# Offsets may exceed the duration by rounding in real DESED; allow 10 ms.
DURATION_TOLERANCE_S = 0.01


@dataclass(frozen=True)
class Problem:
    path: str
    row: int | None  # line number in the file (header = 1); None for file-level problems
    message: str

    def __str__(self) -> str:
        where = self.path if self.row is None else f"{self.path}, row {self.row}"
        return f"{where}: {self.message}"


class DataError(ValueError):
    """Bad data: holds every problem found, each naming file, row and what is wrong."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        shown = "\n  ".join(str(p) for p in self.problems[:20])
        more = len(self.problems) - 20
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the data:\n  {shown}{tail}")


@dataclass(frozen=True)
class Event:
    filename: str
    onset: float
    offset: float
    label: str


@dataclass
class StrongLabels:
    """Strong labels of a split: every clip named (in order) and its events.

    A clip may be listed with no events (an empty row in real DESED)."""

    filenames: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def events_by_file(self) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {name: [] for name in self.filenames}
        for ev in self.events:
            out[ev.filename].append(ev)
        return out

    @property
    def labels(self) -> list[str]:
        return sorted({ev.label for ev in self.events})


# ---------------------------------------------------------------------------
# reading

def _read_rows(path: Path, header: tuple[str, ...], problems: list[Problem]):
    """Yield (line_number, fields) of the data rows; check the header."""
    p = str(path)
    if not path.is_file():
        problems.append(Problem(p, None, "file not found"))
        return
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (spreadsheet exports) is dropped
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(p, None, f"cannot read as UTF-8 text: {exc}"))
        return
    lines = text.splitlines()
    if not lines:
        problems.append(Problem(p, None, "empty file; expected the header "
                                + " ".join(header) + " (tab-separated)"))
        return
    found = tuple(h.strip() for h in lines[0].split("\t"))
    if found != header:
        problems.append(Problem(p, 1, f"header is {list(found)}, expected {list(header)} "
                                      "(tab-separated)"))
        return
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # blank lines (often a trailing one) carry nothing
        yield number, line.split("\t")


def first_rows(path, header: tuple[str, ...]) -> dict[str, int]:
    """Clip name -> the first row that lists it (numbered as problems number rows)."""
    rows: dict[str, int] = {}
    for number, fields in _read_rows(Path(path), header, []):
        name = fields[0].strip()
        if name and name not in rows:
            rows[name] = number
    return rows


def _parse_time(value: str, what: str, p: str, row: int, problems: list[Problem]):
    try:
        t = float(value)
    except ValueError:
        problems.append(Problem(p, row, f"{what} {value!r} is not a number"))
        return None
    if not math.isfinite(t):
        problems.append(Problem(p, row, f"{what} {value!r} is not finite"))
        return None
    if t < 0:
        problems.append(Problem(p, row, f"{what} {t:g} is negative"))
        return None
    return t


def outside_folder(name: str) -> bool:
    """Whether a listed file name would point outside its split's folder (an absolute
    path or a ``..`` part), which a TSV may not do."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return (PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute()
            or bool(PureWindowsPath(name).drive) or ".." in parts)


def _safe_name(name: str, p: str, row: int, problems: list[Problem]) -> bool:
    if outside_folder(name):
        problems.append(Problem(p, row, f"file name {name!r} points outside the split's audio "
                                        "folder (absolute or with ..); list names inside it"))
        return False
    return True


def _spaced(field: str, n: int) -> bool:
    """A lone field that holds ``n`` space-separated ones (a row typed with spaces)."""
    return len(field.split()) == n


def _new_name(name: str, seen, p: str, row: int, problems: list[Problem]) -> bool:
    """A clip name that is not empty, inside the folder and not listed before (one row per clip)."""
    if not name:
        problems.append(Problem(p, row, "empty filename"))
        return False
    if not _safe_name(name, p, row, problems):
        return False
    if name in seen:
        problems.append(Problem(p, row, f"{name} is listed twice"))
        return False
    return True


def _check_label(label: str, classes, p: str, row: int, problems: list[Problem]) -> bool:
    if not label:
        problems.append(Problem(p, row, "empty event label"))
        return False
    if classes is not None and label not in classes:
        problems.append(Problem(p, row, f"label {label!r} is not in the class list "
                                        f"({', '.join(classes)})"))
        return False
    return True


def parse_strong(path, classes: Sequence[str] | None = None,
                 durations: Mapping[str, float] | None = None):
    """Parse a strong TSV. Returns (StrongLabels, problems).

    ``classes``: if given, labels outside it are problems.
    ``durations``: if given, offsets past a clip's duration are problems.
    """
    path = Path(path)
    p = str(path)
    problems: list[Problem] = []
    labels = StrongLabels()
    seen: set[str] = set()
    for row, fields in _read_rows(path, STRONG_HEADER, problems):
        if len(fields) == 1 and _spaced(fields[0], 4):
            problems.append(Problem(p, row, "expected 4 tab-separated fields (filename onset "
                                            "offset event_label), found 1: the row is separated "
                                            "by spaces, not tabs"))
            continue
        if len(fields) == 1 or (len(fields) == 4 and not any(f.strip() for f in fields[1:])):
            # A clip listed without events.
            name = fields[0].strip()
            if not name:
                problems.append(Problem(p, row, "empty filename"))
            elif not _safe_name(name, p, row, problems):
                continue
            elif name not in seen:
                seen.add(name)
                labels.filenames.append(name)
            continue
        if len(fields) != 4:
            problems.append(Problem(p, row, f"expected 4 tab-separated fields "
                                            f"(filename onset offset event_label), found {len(fields)}"))
            continue
        name, on_s, off_s, label = (f.strip() for f in fields)
        if not name:
            problems.append(Problem(p, row, "empty filename"))
            continue
        if not _safe_name(name, p, row, problems):
            continue
        onset = _parse_time(on_s, "onset", p, row, problems)
        offset = _parse_time(off_s, "offset", p, row, problems)
        ok = _check_label(label, classes, p, row, problems)
        if onset is None or offset is None or not ok:
            continue
        if onset >= offset:
            problems.append(Problem(p, row, f"onset {onset:g} is not before offset {offset:g}"))
            continue
        if durations is not None and name in durations:
            if offset > durations[name] + DURATION_TOLERANCE_S:
                problems.append(Problem(p, row, f"offset {offset:g} s is past the end of "
                                                f"{name} ({durations[name]:g} s)"))
                continue
        if name not in seen:
            seen.add(name)
            labels.filenames.append(name)
        labels.events.append(Event(name, onset, offset, label))
    return labels, problems


def parse_weak(path, classes: Sequence[str] | None = None):
    """Parse a weak TSV. Returns ({filename: (labels...)}, problems)."""
    path = Path(path)
    p = str(path)
    problems: list[Problem] = []
    out: dict[str, tuple[str, ...]] = {}
    for row, fields in _read_rows(path, WEAK_HEADER, problems):
        if len(fields) == 1 and _spaced(fields[0], 2) and not fields[0].strip().lower().endswith(
                (".wav", ".flac", ".ogg")):
            problems.append(Problem(p, row, "expected 2 tab-separated fields (filename "
                                            "event_labels), found 1: the row is separated by "
                                            "spaces, not tabs"))
            continue
        if len(fields) == 1:
            fields = [fields[0], ""]
        if len(fields) != 2:
            problems.append(Problem(p, row, f"expected 2 tab-separated fields "
                                            f"(filename event_labels), found {len(fields)}"))
            continue
        name, labs = fields[0].strip(), fields[1].strip()
        if not _new_name(name, out, p, row, problems):
            continue
        parts = [s.strip() for s in labs.split(",")] if labs else []
        if not all(_check_label(s, classes, p, row, problems) for s in parts):
            continue
        out[name] = tuple(sorted(set(parts)))
    return out, problems


def parse_unlabeled(path):
    """Parse an unlabeled TSV. Returns ([filename...], problems)."""
    path = Path(path)
    p = str(path)
    problems: list[Problem] = []
    names: list[str] = []
    seen: set[str] = set()
    for row, fields in _read_rows(path, UNLABELED_HEADER, problems):
        if len(fields) != 1 or not fields[0].strip():
            problems.append(Problem(p, row, f"expected one field (filename), found {fields!r}"))
            continue
        name = fields[0].strip()
        if not _safe_name(name, p, row, problems):
            continue
        if name in seen:
            problems.append(Problem(p, row, f"{name} is listed twice"))
            continue
        seen.add(name)
        names.append(name)
    return names, problems


def parse_durations(path):
    """Parse a durations TSV. Returns ({filename: seconds}, problems)."""
    path = Path(path)
    p = str(path)
    problems: list[Problem] = []
    out: dict[str, float] = {}
    for row, fields in _read_rows(path, DURATIONS_HEADER, problems):
        if len(fields) != 2:
            hint = ": the row is separated by spaces, not tabs" \
                if len(fields) == 1 and _spaced(fields[0], 2) else ""
            problems.append(Problem(p, row, f"expected 2 tab-separated fields "
                                            f"(filename duration), found {len(fields)}{hint}"))
            continue
        name = fields[0].strip()
        if not _new_name(name, out, p, row, problems):
            continue
        d = _parse_time(fields[1].strip(), "duration", p, row, problems)
        if d is None:
            continue
        if d == 0:
            problems.append(Problem(p, row, "duration is 0"))
            continue
        out[name] = d
    return out, problems


def _raise_if(result, problems):
    if problems:
        raise DataError(problems)
    return result


def read_strong(path, classes=None, durations=None) -> StrongLabels:
    return _raise_if(*parse_strong(path, classes, durations))


def read_weak(path, classes=None) -> dict[str, tuple[str, ...]]:
    return _raise_if(*parse_weak(path, classes))


def read_unlabeled(path) -> list[str]:
    return _raise_if(*parse_unlabeled(path))


def read_durations(path) -> dict[str, float]:
    return _raise_if(*parse_durations(path))


# ---------------------------------------------------------------------------
# writing

def _write_atomic(path, header: tuple[str, ...], rows: Iterable[Sequence[str]]) -> None:
    """Write the TSV atomically (``files.write_text``: complete or absent, normal mode).
    A field holding a tab or a line break would break the format: refused, naming it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)]
    for r in rows:
        for f in r:
            if any(c in f for c in "\t\n\r"):
                raise ValueError(f"{path}: cannot write {f!r}: a TSV field may not hold a tab "
                                 "or a line break (rename the file)")
        lines.append("\t".join(r))
    write_text(path, "\n".join(lines) + "\n")


def _fmt(t: float) -> str:
    return f"{t:.3f}"


def write_strong(path, events: Iterable[Event], empty_files: Iterable[str] = ()) -> None:
    """Write events (and, as empty rows, clips without events)."""
    rows = [(e.filename, _fmt(e.onset), _fmt(e.offset), e.label) for e in events]
    rows += [(name, "", "", "") for name in empty_files]
    _write_atomic(path, STRONG_HEADER, rows)


def write_weak(path, labels: Mapping[str, Iterable[str]]) -> None:
    _write_atomic(path, WEAK_HEADER,
                  [(name, ",".join(sorted(set(labs)))) for name, labs in labels.items()])


def write_unlabeled(path, filenames: Iterable[str]) -> None:
    _write_atomic(path, UNLABELED_HEADER, [(name,) for name in filenames])


def write_durations(path, durations: Mapping[str, float]) -> None:
    _write_atomic(path, DURATIONS_HEADER, [(n, _fmt(d)) for n, d in durations.items()])
