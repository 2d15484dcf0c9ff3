"""Any DESED-format folder trains and evaluates: its own class names, sample rates from 8 to
48 kHz, stereo, flac, and clips shorter than 10 s (the recipe's defect 6: pre-training
used to build its datasets with the ten DESED classes and refused any other label)."""
import json

import numpy as np
import pytest
import soundfile as sf

from matsed_lite.cli import main
from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.models.checkpoints import load_model
from matsed_lite.presets import DESED_CLASSES

# Invented names, one per DESED class, sorted differently from DESED's order.
INVENTED = dict(zip(DESED_CLASSES, ["zz_kettle", "yy_drill", "xx_purr", "ww_clatter",
                                    "vv_bark", "uu_buzz", "tt_sizzle", "ss_tap",
                                    "rr_voice", "qq_hoover"]))


def _rewrite_tsv(path, renames):
    text = path.read_text()
    for old, new in INVENTED.items():
        text = text.replace(old, new)
    for old, new in renames.items():
        text = text.replace(old, new)
    path.write_text(text)


def _convert(path, rate, channels, fmt, seconds=None):
    """Rewrite one clip at another rate / channel count / format (and length)."""
    x, sr = sf.read(path, dtype="float32")
    if seconds is not None:
        x = x[:int(seconds * sr)]
    n = int(round(len(x) * rate / sr))
    y = np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)
    if channels == 2:
        y = np.stack([y, 0.5 * y], axis=1)
    new = path.with_suffix("." + fmt)
    path.unlink()
    sf.write(new, y, rate, format=fmt.upper())
    return new.name


@pytest.fixture(scope="module")
def foreign_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign") / "data"
    generate_desed_lite(root, "smoke", seed=3, progress=False)
    (root / "desed_lite.json").unlink()  # not ours any more: a user's folder
    kinds = [(48000, 2, "flac"), (8000, 1, "wav"), (44100, 2, "wav"), (22050, 1, "flac")]
    for split in ("synth_train", "weak", "unlabeled", "validation"):
        renames = {}
        for i, wav in enumerate(sorted((root / "audio" / split).glob("*.wav"))):
            rate, ch, fmt = kinds[i % len(kinds)]
            # Weak and unlabeled clips may be short: no strong label can fall past their end.
            short = 6.5 if split in ("weak", "unlabeled") and i % 3 == 0 else None
            renames[wav.name] = _convert(wav, rate, ch, fmt, short)
        for tsv in (root / "metadata").glob(f"{split}*.tsv"):
            _rewrite_tsv(tsv, renames)
        dur = root / "metadata" / f"{split}_durations.tsv"
        if dur.is_file() and split != "validation":
            dur.unlink()
    return root


def test_check_train_and_evaluate_a_foreign_folder(foreign_folder, tmp_path, capsys):
    assert main(["data", "check", str(foreign_folder)]) == 0
    run = tmp_path / "run"
    assert main(["train", "--data", str(foreign_folder), "--preset", "smoke",
                 "--out", str(run)]) == 0, capsys.readouterr().err
    _, info = load_model(run / "stage2")
    assert info["classes"] == sorted(INVENTED.values())
    # the encoder was adapted to the folder's own classes first
    adapted = json.loads((run / "adapt" / "recipe.json").read_text())
    assert adapted["classes"] == sorted(INVENTED.values())
    assert set(adapted["val_frame_AP"]) == set(INVENTED.values())
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--run", str(run), "--data", str(foreign_folder),
                 "--json", str(out)]) == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert set(res["per_class"]["psds1"]) == set(INVENTED.values())
    assert res["n_clips"] == len(list((foreign_folder / "audio" / "validation").iterdir()))
    assert 0.0 <= res["psds2"] <= 1.0 or np.isnan(res["psds2"])
