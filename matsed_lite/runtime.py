"""Where code runs and how it is made repeatable: device choice, seeding, versions."""
from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch
import torchaudio

from . import __version__


def _local_rank() -> int | None:
    """This process's GPU on its machine when torchrun runs several (LOCAL_RANK), else None."""
    if int(os.environ.get("WORLD_SIZE") or 1) > 1 and os.environ.get("LOCAL_RANK"):
        return int(os.environ["LOCAL_RANK"])
    return None


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple MPS, then CPU (or ``prefer`` if given). Under
    torchrun with several processes, "cuda" means GPU ``LOCAL_RANK``."""
    local = _local_rank()
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and device.index is None and local is not None:
            return torch.device("cuda", local)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda") if local is None else torch.device("cuda", local)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def environment_report(device: torch.device | None = None) -> dict:
    """Versions and hardware: printed by every notebook's first cell."""
    device = device or pick_device()
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "matsed_lite": __version__,
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "colab": "google.colab" in sys.modules,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
