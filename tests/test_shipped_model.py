"""The trained models shipped with the package: loadable, small, and not stale."""
import json
from dataclasses import asdict

import pytest
import torch

from matsed_lite.models.crnn import CRNN
from matsed_lite.presets import RECIPES, get_preset, stage_recipe
from matsed_lite.evaluation.shipped import CHECK_TOLERANCE, sed_check
from matsed_lite.models.checkpoints import (load_shipped_model, shipped_model_path,
                                            shipped_model_recipe)

KINDS = ["matsed", "crnn"]


@pytest.mark.parametrize("kind", KINDS)
def test_recipe_size_and_geometry(kind):
    r = shipped_model_recipe(kind)
    for key in ("command", "preset", "classes", "check", "validation", "torch", "stages"):
        assert key in r, key
    assert r["preset"] == "cpu" and r["command"].startswith("matsed-lite train")
    assert shipped_model_path(kind).stat().st_size < 15 * 2**20
    model, info = load_shipped_model(kind)
    assert not model.training and info["classes"] == r["classes"]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    p = get_preset("cpu")
    mel = torch.randn(1, p.n_mels, p.n_frames)
    with torch.no_grad():
        out = model(mel=mel) if kind == "matsed" else model(mel)
    T = p.context_frames if kind == "matsed" else p.n_frames // model.time_downsampling
    assert out["frame_probs"].shape == (1, T, len(r["classes"]))


def test_matsed_matches_the_current_cpu_preset():
    _, info = load_shipped_model("matsed")
    p = get_preset("cpu")
    assert info["frames_per_token"] == p.frames_per_token
    assert info["frame_hop"] == pytest.approx(p.context_hop_seconds)
    assert info["encoder_config"]["dim"] == p.encoder_dim


def test_matsed_stages_match_the_current_cpu_recipes():
    """The shipped MAT-SED-lite was fine-tuned with today's stage recipes at cpu
    (stage 2's consistency weight included): re-ship when one changes."""
    stages = shipped_model_recipe("matsed")["stages"]
    p = get_preset("cpu")
    for stage, epochs in (("stage1", p.stage1_epochs), ("stage2", p.stage2_epochs)):
        assert stages[stage]["recipe"] == json.loads(json.dumps(asdict(stage_recipe(stage, p)))), stage
        assert stages[stage]["epochs"] == epochs, stage


def test_crnn_matches_the_current_cpu_preset_and_recipe():
    """The shipped CRNN is what `train-crnn --preset cpu` trains today: the preset's
    geometry and the current crnn recipe (re-ship when either changes)."""
    model, info = load_shipped_model("crnn")
    p = get_preset("cpu")
    assert info["crnn_config"] == CRNN.from_preset(p, len(info["classes"])).config()
    stage = shipped_model_recipe("crnn")["stages"]["crnn"]
    assert stage["geometry"] == p.crnn_geometry
    assert stage["recipe"] == json.loads(json.dumps(asdict(RECIPES["crnn"])))
    assert info["frame_hop"] == pytest.approx(p.frame_hop_seconds * model.time_downsampling)


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_weights_still_score_the_recorded_check(kind, tmp_path):
    """Regenerates the first N validation clips and re-scores them: fails if the data
    generator, features, model or evaluation changed so that the weights are stale
    (re-ship with `matsed-lite ship RUN --command ...`)."""
    check = shipped_model_recipe(kind)["check"]
    got = sed_check(shipped_model_path(kind), check["preset"], seed=check["seed"],
                    n=check["n_clips"], workdir=tmp_path,
                    temperature=check.get("temperature", 1.0))  # checks made before it was recorded: 1
    assert check["tolerance"] == CHECK_TOLERANCE
    assert abs(got["psds1"] - check["psds1"]) <= check["tolerance"], (got, check)
    assert abs(got["psds2"] - check["psds2"]) <= check["tolerance"], (got, check)
