"""Score files: score DataFrames on disk in sed_scores_eval's format.

One TSV per clip (columns onset, offset, <classes>), so anyone can recompute
every metric from them (sed_scores_eval also accepts the directory path
directly).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .ground_truth import by_audio_id, list_some



def write_score_files(directory, score_dataframes: Mapping) -> list[Path]:
    """Write each clip's score DataFrame to ``directory/<audio id>.tsv``.

    Uses ``sed_scores_eval.base_modules.io.write_sed_scores`` (which checks
    the format). sed_scores_eval reads a directory as the whole evaluation
    set, so a directory already holding score files of other clips, or
    anything that is not a .tsv, is refused: stale files would be scored too.
    Files of the same clips are overwritten. Returns the paths written."""
    from sed_scores_eval.base_modules.io import write_sed_scores

    dfs = by_audio_id(score_dataframes, "score_dataframes")
    if not dfs:
        raise ValueError("score_dataframes is empty: nothing to write")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"directory {directory} exists and is not a directory")
    if directory.is_dir():
        others = [p.name for p in directory.iterdir()
                  if not (p.is_file() and p.suffix == ".tsv" and p.stem in dfs)]
        if others:
            raise ValueError(f"directory {directory} already holds {len(others)} other file(s) "
                             f"({list_some(others)}); sed_scores_eval would read them as part of the "
                             "set: use an empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    write_sed_scores(dfs, directory)
    return [directory / f"{cid}.tsv" for cid in dfs]


def read_score_files(directory) -> dict:
    """Read a directory written by ``write_score_files`` (or by any tool in
    sed_scores_eval's format): audio id -> score DataFrame.

    Uses ``sed_scores_eval.base_modules.io.read_sed_scores``, so these are
    the DataFrames anyone else recomputing the metrics gets (pandas may read
    a score back 1 ulp off; no metric here notices)."""
    from sed_scores_eval.base_modules.io import read_sed_scores

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"directory {directory} is not a directory")
    if not any(directory.iterdir()):
        raise ValueError(f"directory {directory} holds no score files")
    return read_sed_scores(directory)
