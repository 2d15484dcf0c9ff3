"""Executing the course's notebooks headless, in order, with papermill.

Each notebook gets the same parameters (PRESET, DATA_ROOT, OUT_DIR, SEED),
injected after its one cell tagged ``parameters``; it writes ``results.json``
and its figures into OUT_DIR. The runner stops at the first failing notebook,
naming it and the failing cell, and ends with a table of times and key numbers.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
KERNEL = "python3"  # always named: CI kernels are named differently otherwise


class NotebookFailed(RuntimeError):
    def __init__(self, notebook: Path, message: str, executed: Path | None = None):
        self.notebook = notebook
        self.executed = executed
        where = f"\n  executed copy with the error: {executed}" if executed else ""
        super().__init__(f"notebook {notebook.name} failed: {message}{where}")


@dataclass
class NotebookResult:
    name: str
    seconds: float
    out_dir: Path
    results: dict = field(default_factory=dict)

    def key_numbers(self, limit: int = 4) -> str:
        skip = {"seed"}
        items = [(k, v) for k, v in self.results.items()
                 if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)]
        return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in items[:limit])


def list_notebooks(notebooks_dir) -> list[Path]:
    """The course's notebooks in order (files named NN_*.ipynb)."""
    d = Path(notebooks_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {d.resolve()} (run from the repository "
                                "root or pass --notebooks-dir)")
    found = sorted(d.glob(NOTEBOOK_GLOB))
    if not found:
        raise FileNotFoundError(f"no notebooks named {NOTEBOOK_GLOB} in {d.resolve()}")
    return found


def select_notebooks(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Keep the notebooks whose number is in ``only`` (e.g. ["00", "3"])."""
    if not only:
        return notebooks
    wanted = {s.strip().zfill(2) for s in only if s.strip()}
    numbers = {nb.name[:2] for nb in notebooks}
    unknown = sorted(wanted - numbers)
    if unknown:
        raise ValueError(f"--only: no notebook numbered {', '.join(unknown)} "
                         f"(have {', '.join(sorted(numbers))})")
    return [nb for nb in notebooks if nb.name[:2] in wanted]


def notebook_parameters(path) -> dict:
    """Names (and defaults) declared in a notebook's ``parameters`` cell."""
    import papermill

    return papermill.inspect_notebook(str(path))


def run_notebook(path, out_dir, parameters: dict, cwd=None, timeout: float | None = None,
                 progress: bool = False) -> NotebookResult:
    """Execute one notebook into out_dir; raise NotebookFailed naming the cell that failed."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path, out_dir = Path(path), Path(out_dir)
    declared = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        # papermill would only warn and the notebook would silently use its defaults.
        raise NotebookFailed(path, f"parameter(s) {', '.join(unknown)} are not declared in its "
                                   f"parameters cell (declared: {', '.join(declared) or 'none'})")
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / path.name
    results_file = out_dir / "results.json"
    results_file.unlink(missing_ok=True)  # never report a previous run's numbers
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(path), str(executed), parameters=parameters, kernel_name=KERNEL,
            cwd=str(cwd or path.parent), progress_bar=progress, log_output=False,
            execution_timeout=timeout,
        )
    except PapermillExecutionError as exc:
        first_line = exc.source.strip().splitlines()[0] if exc.source.strip() else ""
        cell = _source_cell_number(path, exc.cell_index)
        raise NotebookFailed(
            path, f"cell {cell} (counting from 1, markdown included; it starts "
                  f"{first_line!r}) raised {exc.ename}: {exc.evalue}", executed) from None
    seconds = time.perf_counter() - start
    if not results_file.is_file():
        raise NotebookFailed(path, f"it ran but wrote no {results_file}", executed)
    results = json.loads(results_file.read_text())
    return NotebookResult(path.stem, seconds, out_dir, results)


def _source_cell_number(path: Path, executed_index: int) -> int:
    """1-based number of the failing cell in the source notebook: papermill's
    index counts the parameters cell it injected after the tagged one."""
    import nbformat

    cells = nbformat.read(str(path), as_version=4).cells
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    if tagged and executed_index > tagged[0]:
        executed_index -= 1
    return executed_index + 1


def run_notebooks(preset: str, notebooks_dir="notebooks", out=None, only=None, data_root=None,
                  figures_dir=None, seed: int = 0, timeout: float | None = None,
                  progress: bool = True, echo=print,
                  results: list | None = None) -> list[NotebookResult]:
    """Run the course (or the notebooks in ``only``) in order; stop at the first failure.

    Finished notebooks are appended to ``results`` as they complete, so a caller
    can still summarise them when a later notebook fails."""
    notebooks = select_notebooks(list_notebooks(notebooks_dir), only)
    root = Path(notebooks_dir).resolve().parent
    out = Path(out) if out else root / "build" / preset
    data_root = Path(data_root) if data_root else root / "data" / f"desed_lite_{preset}"
    results = [] if results is None else results
    for i, nb in enumerate(notebooks, 1):
        echo(f"[{i}/{len(notebooks)}] {nb.name} (preset {preset}) ...")
        params = {"PRESET": preset, "DATA_ROOT": str(data_root.resolve()),
                  "OUT_DIR": str((out / nb.stem).resolve()), "SEED": seed}
        res = run_notebook(nb, out / nb.stem, params, cwd=root, timeout=timeout,
                           progress=progress)
        echo(f"      done in {res.seconds:.1f} s  {res.key_numbers()}")
        if figures_dir is not None:
            copy_figures(res.out_dir, figures_dir)
        results.append(res)
    return results


def copy_figures(out_dir, figures_dir) -> list[Path]:
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for png in sorted(Path(out_dir).glob("*.png")):
        shutil.copy2(png, figures_dir / png.name)
        copied.append(figures_dir / png.name)
    return copied


def format_summary(results: list[NotebookResult]) -> str:
    rows = [("notebook", "seconds", "key numbers")]
    rows += [(r.name, f"{r.seconds:.1f}", r.key_numbers()) for r in results]
    rows.append(("total", f"{sum(r.seconds for r in results):.1f}", ""))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{a:<{w0}}  {b:>{w1}}  {c}".rstrip() for a, b, c in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
