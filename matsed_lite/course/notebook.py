"""What every notebook of the course shares: set-up, output folder, results.

A notebook calls ``start_notebook`` right after its parameters cell. The
returned ``NotebookRun`` knows the preset, where the data lives, where outputs
go, and saves figures and ``results.json`` there, so that the notebook runner
and the tests can read back what a notebook found.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.desed_lite import generate_desed_lite
from ..data.layout import layout_for
from ..data.synth_folder import foreign_folder
from ..files import save_figure, write_json
from ..presets import Preset, get_preset
from ..runtime import environment_report, pick_device, seed_everything

# The course's data set is always generated with this seed; a notebook's SEED
# changes only its own randomness, never the data it reads.
DATA_SEED = 0


# What chapters 04 and 05 train when the course runs on a CPU at the cpu preset: the
# tour (`make tour`) has to fit 45 minutes on a 2-core laptop, and the shipped models
# already are the same pipeline at the preset's full budget (`matsed-lite train`,
# 38-100 minutes). 04 pre-trains (a third of the clips per epoch), 05 fine-tunes from
# it, stage 2 for one epoch without fusion in its teacher; the CRNN is not retrained
# (05 draws the shipped CRNN's curves). Everything else, and every other preset or
# device, gets the preset's full budget.
COURSE_BUDGET = {"cpu": {"pretrain_epochs": 4, "compare_epochs": 4, "clips_per_epoch": 960,
                         "stage1_epochs": 3, "stage2_epochs": 1, "stage2_fusion_lambda": 0.0,
                         "crnn_epochs": 0}}


def course_budget(preset: "Preset | str", device=None) -> dict:
    """Epochs (and clips per pre-training epoch, None: all) a chapter trains for:
    ``COURSE_BUDGET`` for the cpu preset on a CPU, else the preset's full budget."""
    p = get_preset(preset)
    dev = pick_device() if device is None else device
    if p.name in COURSE_BUDGET and str(getattr(dev, "type", dev)) == "cpu":
        return {**COURSE_BUDGET[p.name], "full": False}
    return {"pretrain_epochs": p.pretrain_epochs, "compare_epochs": p.pretrain_epochs,
            "clips_per_epoch": None, "stage1_epochs": p.stage1_epochs,
            "stage2_epochs": p.stage2_epochs, "stage2_fusion_lambda": None,
            "crnn_epochs": p.crnn_epochs, "full": True}


def setup(seed: int = 0, quiet: bool = False) -> dict:
    """First cell: seed, pick the device, print versions. Returns the report."""
    seed_everything(seed)
    info = environment_report(pick_device())
    info["seed"] = seed
    if not quiet:
        print("  ".join(f"{k}={v}" for k, v in info.items()))
    return info


@dataclass
class NotebookRun:
    name: str
    preset: Preset
    data_root: Path
    out_dir: Path
    seed: int
    results: dict = field(default_factory=dict)

    @property
    def number(self) -> str:
        return self.name.split("_", 1)[0]

    def save_figure(self, fig, stem: str, dpi: int = 90) -> Path:
        """Save ``fig`` as OUT_DIR/<notebook number>_<stem>.png."""
        return save_figure(fig, self.out_dir / f"{self.number}_{stem}.png", dpi=dpi,
                           bbox_inches="tight")

    def ensure_data(self, splits=None) -> dict:
        """Generate DESED-lite for this preset if it is not complete (finished
        clips are skipped, so this is quick when the data is there).

        A DESED-format folder that ``synth`` did not make (real DESED, your own
        data: no ``desed_lite.json``) is used as it is and never written to."""
        if foreign_folder(self.data_root):
            layout_for(self.data_root)  # raises, naming the folder, if it is not DESED-format
            print(f"{self.data_root}: your own DESED-format data (no desed_lite.json); "
                  f"used as it is, nothing generated or written there")
            return {}
        return generate_desed_lite(self.data_root, self.preset, seed=DATA_SEED, splits=splits,
                                   progress=False)

    def record(self, **values) -> None:
        """Add key numbers to results.json (written at once, so a crash keeps them)."""
        self.results.update({k: _plain(v) for k, v in values.items()})
        payload = {"notebook": self.name, "preset": self.preset.name, "seed": self.seed,
                   **self.results}
        write_json(self.out_dir / "results.json", payload, indent=2, sort_keys=False)


def start_notebook(name: str, preset: "Preset | str", data_root=None, out_dir=None,
                   seed: int = 0) -> NotebookRun:
    """Resolve the parameters of a notebook and make its output folder.

    Defaults (used on Colab and when a notebook is opened by hand):
    data in ``data/desed_lite_<preset>``, outputs in ``build/<preset>/<name>``,
    both relative to the working directory."""
    p = get_preset(preset)
    data_root = Path(data_root) if data_root else Path("data") / f"desed_lite_{p.name}"
    out_dir = Path(out_dir) if out_dir else Path("build") / p.name / name
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    run = NotebookRun(name=name, preset=p, data_root=data_root, out_dir=out_dir, seed=seed)
    print(f"notebook {name}: preset={p.name} data={data_root} outputs={out_dir} seed={seed}")
    return run


def _plain(v):
    """JSON-friendly copy of numbers, arrays and nested containers."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    if hasattr(v, "item") and callable(v.item):  # torch scalars
        return _plain(v.item())
    return v
