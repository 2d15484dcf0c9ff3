"""The shipped PaSST-lite weights: they load for the lite presets, refuse others,
and still score what their recipe recorded on freshly generated data."""
import pytest
import torch

from matsed_lite.models.passt_lite import (SHIPPED_WEIGHTS, PaSSTLite, load_pretrained_encoder,
                                           shipped_encoder_recipe)
from matsed_lite.training.encoder_pretraining import tagging_check
from matsed_lite.presets import DESED_CLASSES, get_preset


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu"])
def test_loads_for_lite_presets(preset):
    m = load_pretrained_encoder(preset)
    assert isinstance(m, PaSSTLite) and not m.training
    p = get_preset(preset)
    assert m.feature_block == p.encoder_feature_block
    mel = torch.randn(1, p.n_mels, 256)
    assert m.frames_per_token == p.frames_per_token
    assert m.frame_features(mel).shape == (1, 256 // p.context_downsampling, p.encoder_dim)


def test_refuses_other_geometry():
    with pytest.raises(ValueError, match="passt_real"):
        load_pretrained_encoder("paper")


def test_recipe_and_size():
    r = shipped_encoder_recipe()
    assert r["encoder_geometry"] == list(get_preset(r["preset"]).encoder_geometry)
    for key in ("command", "seed", "epochs", "data", "mAP", "per_class_ap", "check", "torch"):
        assert key in r
    assert SHIPPED_WEIGHTS.stat().st_size < 10 * 2**20
    # Clearly better than chance (a constant scorer's AP is the class prevalence; a
    # broad-corpus recipe records it on tagging_eval, where its mAP is measured).
    chance = r.get("eval_prevalence", r["data"]["train_prevalence"])
    assert r["mAP"] > 2 * max(chance.values())
    # A 10-class (DESED-lite) or 54-class (broad corpus) head: scored on the DESED columns.
    assert len(r["classes"]) == r["model_config"]["n_classes"]
    assert list(r["per_class_ap"]) == list(DESED_CLASSES)


def test_shipped_weights_still_score_the_recorded_check(tmp_path):
    """Regenerates the first N tagging_eval clips: fails if the generator changed
    in a way that makes the shipped weights stale."""
    check = shipped_encoder_recipe()["check"]
    model = load_pretrained_encoder(check["preset"])
    got = tagging_check(model, check["preset"], seed=check["seed"], n=check["n_clips"],
                        workdir=tmp_path)
    assert abs(got["mAP"] - check["mAP"]) <= check["tolerance"], (got["mAP"], check["mAP"])
