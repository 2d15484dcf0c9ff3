"""The folder a generator owns: its manifest, other people's folders, its worker processes.

``desed_lite.json`` records how a DESED-lite folder was made (generator version,
preset, seed). A folder made with other settings is refused instead of silently
mixed, and so is a folder that holds files but no manifest: that is someone
else's data (real DESED, a user's own set), and the generator never writes
into it. Worker processes watch their parent and exit when it is gone, so a
killed ``synth`` leaves none running.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from ..files import write_json
from ..presets import DESED_CLASSES, Preset

# Bump when a change makes the same (preset, seed) give different audio or labels:
# a folder made by another version is refused instead of silently mixed.
GENERATOR_VERSION = "1"
MANIFEST_NAME = "desed_lite.json"
_IDENTITY_KEYS = ("version", "preset", "sample_rate", "clip_seconds", "seed")


def new_manifest(preset: Preset, seed: int) -> dict:
    return {
        "generator": "matsed_lite.data.desed_lite",
        "version": GENERATOR_VERSION,
        "preset": preset.name,
        "sample_rate": preset.sample_rate,
        "clip_seconds": preset.clip_seconds,
        "seed": int(seed),
        "classes": list(DESED_CLASSES),
        "splits": {},
    }


def write_manifest(root: Path, data: dict) -> None:
    write_json(Path(root) / MANIFEST_NAME, data, indent=2, sort_keys=True)


def foreign_folder(root) -> bool:
    """Whether ``root`` holds files (other than hidden ones) but no DESED-lite manifest:
    someone else's data, which the generator must never write into."""
    root = Path(root)
    if not root.is_dir() or (root / MANIFEST_NAME).exists():
        return False
    return any(not p.name.startswith(".") for p in root.iterdir())


def open_manifest(root: Path, preset: Preset, seed: int) -> dict:
    """Load ROOT/desed_lite.json, refusing a folder made with other settings or by
    someone else (files, no manifest).

    Clips of two presets or seeds in one folder would be a silently wrong data
    set; failing here is cheap, finding out after training is not."""
    path = Path(root) / MANIFEST_NAME
    want = new_manifest(preset, seed)
    if not path.exists():
        if foreign_folder(root):
            raise ValueError(f"{root} already holds files but no {MANIFEST_NAME}: it is not a "
                             f"DESED-lite folder made by `matsed-lite synth`, and nothing in it "
                             f"is overwritten. Generate into a new or empty folder.")
        return want
    try:
        have = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} exists but cannot be read ({exc}); delete it or "
                         f"generate into another folder") from None
    diff = [k for k in _IDENTITY_KEYS if have.get(k) != want[k]]
    if diff:
        detail = ", ".join(f"{k} {have.get(k)!r} (asked: {want[k]!r})" for k in diff)
        raise ValueError(f"{path} records a DESED-lite data set made with different settings: "
                         f"{detail}. Generate into another folder, or delete {root} first.")
    want["splits"] = dict(have.get("splits", {}))
    return want


def watch_parent(parent: int) -> None:
    """Worker initializer: exit when the parent process is gone (killed, even by
    kill -9), so no orphaned worker keeps rendering."""
    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
