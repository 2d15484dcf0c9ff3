"""Encoder pre-training on the streamed broad corpus (corpus="broad"): two tiny smoke epochs."""
import json
from functools import partial

import pytest
import torch

from matsed_lite.cli import build_parser
from matsed_lite.data.tagging_corpus import DESED_INDICES, FAMILY_CLASSES
from matsed_lite.models.passt_lite import PaSSTLite, load_pretrained_encoder
from matsed_lite.presets import DESED_CLASSES, get_preset
from matsed_lite.training import encoder_pretraining
from matsed_lite.training.broad_pretraining import broad_train_data, broad_validation_mels
from matsed_lite.training.encoder_pretraining import pretrain_encoder, score_tagger, tagging_check

CLIPS = 12   # smoke batch 8: a full and a short batch per epoch


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("desed_lite_smoke")


@pytest.fixture(scope="module")
def run(data_root, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("broad")
    recipe = pretrain_encoder(data_root, "smoke", out, seed=3, epochs=2, corpus="broad",
                              clips_per_epoch=CLIPS, workers=0, progress=False)
    return out, recipe


def test_writes_weights_and_a_broad_recipe(run):
    out, recipe = run
    assert (out / "encoder.pt").is_file()
    saved = json.loads((out / "recipe.json").read_text())
    assert saved["corpus"] == "broad" and saved["classes"] == list(FAMILY_CLASSES)
    assert saved["model_config"]["n_classes"] == len(FAMILY_CLASSES)
    assert saved["clips_per_epoch"] == CLIPS and saved["data"]["broad_train_clips"] == 2 * CLIPS
    # tagging_eval is scored on the DESED columns, named by DESED class
    assert list(saved["per_class_ap"]) == list(DESED_CLASSES)
    assert list(saved["broad_per_class_ap"]) == list(FAMILY_CLASSES)
    assert 0 <= saved["mAP"] <= 1 and 0 <= saved["broad_mAP"] <= 1
    assert [h["epoch"] for h in saved["history"]] == [1, 2]
    assert all("val/mAP" in h and "val/broad_mAP" in h for h in saved["history"])
    assert "--corpus broad --clips-per-epoch 12 --workers 0" in saved["command"]
    assert list(saved["check"]["per_class_ap"]) == list(DESED_CLASSES)


def test_resume_after_epoch_one_gives_the_same_weights(run, data_root, tmp_path, monkeypatch):
    """Interrupted after epoch 1 and resumed, with a rendering worker this time:
    the final weights equal the uninterrupted run's (workers=0) exactly."""
    out_a, _ = run
    out_b = tmp_path / "b"
    kw = dict(seed=3, epochs=2, corpus="broad", clips_per_epoch=CLIPS, workers=1, progress=False)
    with monkeypatch.context() as m:
        m.setattr(encoder_pretraining, "fit", partial(encoder_pretraining.fit, stop_after_epoch=1))
        first = pretrain_encoder(data_root, "smoke", out_b, **kw)
    assert [h["epoch"] for h in first["history"]] == [1]
    pretrain_encoder(data_root, "smoke", out_b, resume=True, **kw)
    a = torch.load(out_a / "run" / "last.pt", weights_only=False)
    b = torch.load(out_b / "run" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"] == 4
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_epochs_see_fresh_clips_whatever_the_workers():
    data = broad_train_data("smoke", seed=3, clips_per_epoch=CLIPS, batch_size=8, num_workers=0)
    assert len(data) == 2
    e1 = [b for b in data(1)]
    e2 = [b for b in data(2)]
    assert torch.cat([b["index"] for b in e1]).tolist() == list(range(12, 24))
    assert torch.cat([b["index"] for b in e2]).tolist() == list(range(24, 36))
    assert not torch.equal(e1[0]["mel"], e2[0]["mel"])
    assert e1[0]["weak"].shape == (8, len(FAMILY_CLASSES)) and len(e1[1]["mel"]) == 4
    with_worker = broad_train_data("smoke", 3, CLIPS, 8, num_workers=1)(1)
    for x, y in zip(e1, with_worker):
        assert torch.equal(x["mel"], y["mel"]) and torch.equal(x["weak"], y["weak"])


def test_held_out_clips_come_from_another_stream():
    mels, y = broad_validation_mels("smoke", seed=3, n=4, num_workers=0)
    train = next(iter(broad_train_data("smoke", 3, 4, 4, num_workers=0)(0)))
    assert mels.shape == train["mel"].shape and y.shape == (4, len(FAMILY_CLASSES))
    assert not torch.equal(mels, train["mel"])


def test_loads_a_54_class_encoder_and_scores_its_desed_columns(run, tmp_path):
    out, _ = run
    p = get_preset("smoke")
    m = load_pretrained_encoder("smoke", weights_dir=out)
    assert isinstance(m, PaSSTLite) and not m.training
    mel = torch.randn(1, p.n_mels, 256)
    assert m(mel).shape == (1, len(FAMILY_CLASSES))
    assert m.frame_features(mel).shape == (1, 256 // p.context_downsampling, p.encoder_dim)
    got = tagging_check(m, "smoke", seed=3, n=8, workdir=tmp_path)
    assert list(got["per_class_ap"]) == list(DESED_CLASSES) and 0 <= got["mAP"] <= 1


class _Fixed(torch.nn.Module):
    def __init__(self, scores):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.scores = scores

    def forward(self, mel):
        return self.scores[: len(mel)] + self.w


def test_score_tagger_takes_the_desed_columns_of_a_broad_head():
    torch.manual_seed(0)
    y = (torch.rand(20, len(DESED_CLASSES)) < 0.4).float()
    y[0], y[1] = 1.0, 0.0
    logits = torch.randn(20, len(FAMILY_CLASSES))
    logits[:, list(DESED_INDICES)] = 4 * y - 2   # perfect on the DESED columns only
    got = score_tagger(_Fixed(logits), torch.zeros(20, 1), y)
    assert got["mAP"] == pytest.approx(1.0)
    assert list(got["per_class_ap"]) == list(DESED_CLASSES)
    broad_y = (torch.rand(20, len(FAMILY_CLASSES)) < 0.3).float()
    assert list(score_tagger(_Fixed(logits), torch.zeros(20, 1), broad_y)["per_class_ap"]) \
        == list(FAMILY_CLASSES)
    with pytest.raises(ValueError):
        score_tagger(_Fixed(logits[:, :10]), torch.zeros(20, 1), broad_y)


def test_cli_flags():
    args = build_parser().parse_args(["pretrain-encoder", "--data", "d", "--out", "o", "--corpus",
                                      "broad", "--clips-per-epoch", "64", "--workers", "0"])
    assert (args.corpus, args.clips_per_epoch, args.workers) == ("broad", 64, 0)
    args = build_parser().parse_args(["pretrain-encoder", "--data", "d", "--out", "o"])
    assert (args.corpus, args.clips_per_epoch, args.workers) == ("desed", None, 1)
