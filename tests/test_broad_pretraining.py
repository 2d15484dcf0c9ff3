"""Encoder pre-training on the streamed broad corpus (corpus="broad"): two tiny smoke epochs."""
import json

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


def test_resume_after_epoch_one_gives_the_same_weights(run, data_root, tmp_path):
    """Interrupted after epoch 1 and resumed, with a rendering worker this time:
    the final weights equal the uninterrupted run's (workers=0) exactly."""
    out_a, _ = run
    out_b = tmp_path / "b"
    kw = dict(seed=3, epochs=2, corpus="broad", clips_per_epoch=CLIPS, workers=1, progress=False)
    first = pretrain_encoder(data_root, "smoke", out_b, stop_after_epoch=1, **kw)
    # stopped early: the schedule is still two epochs long, and the export says where it stopped
    assert [h["epoch"] for h in first["history"]] == [1]
    assert first["epochs"] == 2 and first["epochs_done"] == 1 and first["best_epoch"] == 1
    assert first["command"].endswith("--stop-after-epoch 1")
    assert (out_b / "encoder.pt").is_file()
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


# --- strong pre-training: a frame loss beside the tagging loss ------------------------

def test_token_targets_average_each_patch():
    strong = torch.zeros(1, 40, 2)
    strong[0, 0:16, 0] = 1.0        # exactly patch 0
    strong[0, 20:25, 1] = 1.0       # 5 frames: inside patches 1 (10-25) and 2 (20-35)
    t = encoder_pretraining.token_targets(strong, patch=16, stride=10)
    assert t.shape == (1, 3, 2)     # (40 - 16) // 10 + 1 patches
    torch.testing.assert_close(t[0, :, 0], torch.tensor([1.0, 6 / 16, 0.0]))
    torch.testing.assert_close(t[0, :, 1], torch.tensor([0.0, 5 / 16, 5 / 16]))


def test_tag_and_tokens_matches_the_separate_passes():
    torch.manual_seed(0)
    enc = PaSSTLite.from_preset("smoke", n_classes=5).eval()
    mel = torch.randn(2, 64, 120)
    logits, tokens, keep_t = enc.tag_and_tokens(mel)
    torch.testing.assert_close(logits, enc(mel))
    torch.testing.assert_close(tokens, enc.tokens(mel, enc.feature_block))
    assert keep_t.tolist() == list(range(tokens.shape[2]))
    enc.train()   # patchout drops time columns, and says which survived
    _, tok_po, keep_po = enc.tag_and_tokens(mel)
    assert tok_po.shape[2] == len(keep_po) < tokens.shape[2]
    assert (keep_po.diff() > 0).all()


def test_strong_step_rolls_and_mixes_the_labels_with_the_audio(monkeypatch):
    """A clip whose only sound is one class in its first patch: after the step's roll,
    the frame target must follow the audio (checked through the targets the step builds)."""
    torch.manual_seed(0)
    enc = PaSSTLite.from_preset("smoke", n_classes=3)
    enc.patchout_time = enc.patchout_freq = 0
    model = encoder_pretraining.StrongTagger(enc, 3)
    mel = torch.zeros(2, 64, 100)
    mel[:, :, :16] = 5.0
    strong = torch.zeros(2, 100, 3)
    strong[:, :16, 1] = 1.0
    batch = {"mel": mel, "weak": torch.tensor([[0.0, 1.0, 0.0]] * 2), "strong": strong}
    seen = {}
    real_bce = encoder_pretraining.F.binary_cross_entropy_with_logits

    def spy(logits, target):
        seen.setdefault("targets", []).append(target)
        return real_bce(logits, target)

    monkeypatch.setattr(encoder_pretraining.F, "binary_cross_entropy_with_logits", spy)
    real_pass = enc.tag_and_tokens

    def spy_pass(m):
        seen["mel"] = m
        return real_pass(m)

    monkeypatch.setattr(enc, "tag_and_tokens", spy_pass)
    monkeypatch.setattr(encoder_pretraining, "ENCODER_MIXUP_P", 0.0)
    step = encoder_pretraining.make_strong_tagging_step(0.5)
    loss, metrics = step(model, batch, None)
    tag_t, frame_t = seen["targets"]
    assert frame_t.shape == (2, 9, 3)
    torch.testing.assert_close(loss, metrics["tag_loss"] + 0.5 * metrics["frame_loss"])
    # the class-1 target sits where the loud frames went (each clip rolled its own way);
    # nothing else is active
    loud = (seen["mel"].mean(1) > 1.0).float()[..., None]            # (2, 100, 1)
    assert loud.sum() == 32 and not torch.equal(loud[0], loud[1])
    torch.testing.assert_close(frame_t[..., 1:2], encoder_pretraining.token_targets(loud))
    assert frame_t[..., [0, 2]].abs().max() == 0
    loss.backward()
    assert model.frame_head.weight.grad.abs().sum() > 0
    assert enc.patch_embed.weight.grad.abs().sum() > 0


def test_strong_run_ships_the_encoder_alone(data_root, tmp_path):
    torch.set_num_threads(1)
    recipe = pretrain_encoder(data_root, "smoke", tmp_path, seed=3, epochs=1, corpus="broad",
                              clips_per_epoch=8, workers=0, progress=False, frame_loss=1.0)
    assert recipe["frame_loss"] == 1.0 and recipe["command"].endswith("--frame-loss 1")
    log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["train/frame_loss"] > 0 and log[0]["train/tag_loss"] > 0
    enc = load_pretrained_encoder("smoke", weights_dir=tmp_path)
    saved = torch.load(tmp_path / "encoder.pt", weights_only=True)
    assert set(saved) == set(enc.state_dict()) and not any("frame_head" in k for k in saved)
    with pytest.raises(ValueError, match="frame_loss needs the broad corpus"):
        pretrain_encoder(data_root, "smoke", tmp_path / "x", corpus="desed", frame_loss=1.0)
    with pytest.raises(ValueError, match="frame_loss must be a finite number >= 0, got -1"):
        pretrain_encoder(data_root, "smoke", tmp_path / "y", corpus="broad", frame_loss=-1)
    args = build_parser().parse_args(["pretrain-encoder", "--data", "d", "--out", "o",
                                      "--frame-loss", "0.5"])
    assert args.frame_loss == 0.5
    # A pipeline can start from this encoder instead of the shipped one.
    from matsed_lite.models.encoders import build_encoder

    built = build_encoder("smoke", "lite", lite_weights=tmp_path)
    for k, v in built.state_dict().items():
        assert torch.equal(v, enc.state_dict()[k]), k
    assert not torch.equal(built.patch_embed.weight, load_pretrained_encoder("smoke").patch_embed.weight)
    with pytest.raises(FileNotFoundError, match="no encoder.pt there"):
        build_encoder("smoke", "lite", lite_weights=tmp_path / "x")
    with pytest.raises(ValueError, match="--encoder-weights is for --encoder lite"):
        build_encoder("paper", "passt", lite_weights=tmp_path)
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o",
                                      "--encoder-weights", str(tmp_path)])
    assert args.encoder_weights == tmp_path
