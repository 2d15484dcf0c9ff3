"""matsed-lite: MAT-SED built piece by piece, on DESED-format data."""
from .presets import DESED_CLASSES, PRESETS, Preset, get_preset

__version__ = "0.1.0"
__all__ = ["DESED_CLASSES", "PRESETS", "Preset", "get_preset", "__version__"]
