"""Linear frame probes: they read what is linearly there, and nothing that is not."""
import json

import numpy as np
import torch

from matsed_lite.cli import main
from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.evaluation.probe import linear_probe


def _feats(n, T, informative, seed):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, T, 2, generator=g) > 0.7).float()
    x = torch.randn(n, T, 6, generator=g)
    if informative:
        x[..., :2] += 3 * y  # classes readable along two axes
    return {"x": x, "y": y, "mask": torch.ones(n, T, dtype=torch.bool)}


def test_probe_reads_linear_information_and_not_noise():
    good = linear_probe(_feats(8, 50, True, 0), _feats(4, 50, True, 1), ["a", "b"])
    assert good["mAP"] > 0.95
    noise = linear_probe(_feats(8, 50, False, 0), _feats(4, 50, False, 1), ["a", "b"])
    assert noise["mAP"] < 0.45  # near the prevalence (0.3)
    again = linear_probe(_feats(8, 50, False, 0), _feats(4, 50, False, 1), ["a", "b"])
    assert again == noise  # deterministic


def test_probe_ignores_masked_frames():
    train, test = _feats(8, 50, True, 0), _feats(4, 50, True, 1)
    test["mask"][:, 25:] = False
    test["y"][:, 25:] = 1 - test["y"][:, 25:]  # garbage where masked
    assert linear_probe(train, test, ["a", "b"])["mAP"] > 0.95


def test_probe_command_on_a_smoke_folder(tmp_path, capsys):
    root = tmp_path / "data"
    generate_desed_lite(root, "smoke", seed=0, progress=False,
                        splits=["synth_train", "validation"])
    out = tmp_path / "probe.json"
    assert main(["probe", "--data", str(root), "--preset", "smoke", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert res["train_split"] == "synth_train" and "log-mel" in printed
    for kind in ("encoder", "logmel"):
        aps = [v for v in res[kind]["per_class_ap"].values() if not np.isnan(v)]
        assert aps and all(0 <= v <= 1 for v in aps)
    assert main(["probe", "--data", str(root), "--preset", "smoke",
                 "--test-split", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
