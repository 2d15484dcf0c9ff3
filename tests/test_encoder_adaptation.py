"""Adapting the encoder to a folder's own sounds (training.encoder_adaptation)."""
import json

import pytest
import torch

from matsed_lite.cli import main
from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.models.passt_lite import PaSSTLite, load_pretrained_encoder
from matsed_lite.presets import DESED_CLASSES, get_preset
from matsed_lite.training import encoder_adaptation as ea
from matsed_lite.training import encoder_pretraining as ep
from matsed_lite.training.encoder_pretraining import StrongTagger


def test_roll_moves_frame_labels_with_their_audio(monkeypatch):
    monkeypatch.setattr(ep, "ENCODER_MIXUP_P", 0.0)
    torch.manual_seed(0)
    b, t, k = 6, 100, 3
    mel = torch.zeros(b, 4, t)
    strong = torch.zeros(b, t, k)
    onsets = torch.tensor([3, 20, 41, 57, 80, 99])
    mel[torch.arange(b), 0, onsets] = 1.0
    strong[torch.arange(b), onsets, 1] = 1.0
    m, _, s, known = ep.roll_and_mix(mel, torch.zeros(b, k), strong, torch.ones(b, dtype=torch.bool))
    assert torch.equal(m[:, 0].argmax(1), s[:, :, 1].argmax(1))
    assert not torch.equal(m[:, 0].argmax(1), onsets)  # it did roll
    assert known.all()


def test_mixup_keeps_frame_labels_only_where_both_clips_had_them(monkeypatch):
    monkeypatch.setattr(ep, "ENCODER_MIXUP_P", 1.0)
    torch.manual_seed(1)
    b = 8
    weak = torch.eye(b)                       # clip i is tagged with "class" i: finds its partner
    has = torch.tensor([1, 1, 0, 1, 0, 0, 1, 1], dtype=torch.bool)
    _, w, _, known = ep.roll_and_mix(torch.randn(b, 4, 50), weak, torch.zeros(b, 50, b), has)
    for i in range(b):
        partners = torch.nonzero(w[i] > 1e-6).flatten().tolist()
        assert i in partners or len(partners) == 1
        assert bool(known[i]) == all(bool(has[j]) for j in partners)
    assert known.sum() < has.sum()  # seed 1 pairs some strong clips with weak ones


def _tagger(k=3):
    torch.manual_seed(0)
    return StrongTagger(PaSSTLite.from_preset(get_preset("smoke"), n_classes=k), k)


def test_frame_loss_reads_only_clips_with_frame_labels(monkeypatch):
    monkeypatch.setattr(ep, "ENCODER_MIXUP_P", 0.0)
    model = _tagger().train()
    step = ea.make_adaptation_step(frame_loss=1.0)
    p = get_preset("smoke")
    batch = {"mel": torch.randn(4, p.n_mels, p.n_frames), "weak": torch.ones(4, 3),
             "strong": torch.ones(4, p.n_frames, 3), "has_strong": torch.zeros(4, dtype=torch.bool)}
    loss, logs = step(model, batch, None)
    loss.backward()
    assert float(logs["frame_loss"]) == 0.0
    assert model.frame_head.weight.grad is None or not model.frame_head.weight.grad.any()
    model.zero_grad()
    batch["has_strong"] = torch.tensor([True, False, False, False])
    loss, logs = step(model, batch, None)
    loss.backward()
    assert float(logs["frame_loss"]) > 0.1
    assert model.frame_head.weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def smoke_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt") / "data"
    generate_desed_lite(root, "smoke", seed=5, progress=False)
    return root


def test_adapt_encoder_writes_an_encoder_the_pipeline_loads(smoke_folder, tmp_path):
    shipped = load_pretrained_encoder("smoke")
    out = tmp_path / "adapt"
    recipe = ea.adapt_encoder(smoke_folder, "smoke", out, shipped, epochs=2, progress=False)
    assert recipe["epochs_done"] == 2 and recipe["best_epoch"] in (1, 2)
    assert recipe["classes"] == sorted(DESED_CLASSES)
    assert 0.0 < recipe["val_frame_mAP"] <= 1.0
    assert set(recipe["val_frame_AP"]) == set(DESED_CLASSES)
    on_disk = json.loads((out / "recipe.json").read_text())
    assert on_disk["val_frame_mAP"] == pytest.approx(recipe["val_frame_mAP"])
    adapted = load_pretrained_encoder("smoke", weights_dir=out)
    assert adapted.head.out_features == len(DESED_CLASSES)
    a, s = adapted.state_dict(), shipped.state_dict()
    assert any(not torch.equal(a[k], s[k]) for k in s if k.startswith("blocks."))
    # the shipped encoder itself is left as it was
    assert torch.equal(load_pretrained_encoder("smoke").state_dict()["blocks.0.attn.qkv.weight"],
                       s["blocks.0.attn.qkv.weight"])
    with pytest.raises(ValueError, match="epochs"):
        ea.adapt_encoder(smoke_folder, "smoke", out, shipped, epochs=3, resume=True, progress=False)


def test_train_refuses_adaptation_for_the_real_passt(smoke_folder, tmp_path, capsys):
    assert main(["train", "--data", str(smoke_folder), "--preset", "smoke", "--out",
                 str(tmp_path / "r"), "--encoder", "passt", "--adapt-epochs", "2"]) != 0
    assert "--adapt-epochs is for --encoder lite" in capsys.readouterr().err


def test_resuming_a_run_begun_without_adaptation_is_refused(smoke_folder, tmp_path, capsys):
    run = tmp_path / "old"
    (run / "pretrain" / "run").mkdir(parents=True)  # what a run from before adaptation left
    assert main(["train", "--data", str(smoke_folder), "--preset", "smoke", "--out", str(run),
                 "--resume"]) != 0
    err = capsys.readouterr().err
    assert "began without adapting the encoder" in err and "--adapt-epochs 0" in err
    assert not (run / "adapt").exists()


def test_adapt_encoder_command_writes_a_folder_other_commands_read(smoke_folder, tmp_path, capsys):
    out = tmp_path / "adapted"
    assert main(["adapt-encoder", "--data", str(smoke_folder), "--preset", "smoke", "--out", str(out),
                 "--epochs", "1", "--lr", "1e-4"]) == 0, capsys.readouterr().err
    assert "val_frame_mAP=" in capsys.readouterr().out
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["lr"] == 1e-4 and recipe["epochs"] == 1
    assert main(["probe", "--data", str(smoke_folder), "--preset", "smoke", "--encoder", str(out),
                 "--max-clips", "6"]) == 0, capsys.readouterr().err
    # a second run into the same folder is refused, and nothing is overwritten
    before = (out / "encoder.pt").read_bytes()
    assert main(["adapt-encoder", "--data", str(smoke_folder), "--preset", "smoke", "--out", str(out),
                 "--epochs", "1"]) != 0
    assert "--resume" in capsys.readouterr().err
    assert (out / "encoder.pt").read_bytes() == before


def test_a_small_folder_gets_more_adaptation_epochs_for_the_same_steps():
    cpu = get_preset("cpu")
    # DESED-lite: 1200 strong + 500 weak clips, 54 steps of 32: the preset's 24 epochs
    assert ea.adaptation_epochs(cpu, 1700) == cpu.adapt_epochs == 24
    # 900 labelled clips (29 steps an epoch) need 45 epochs for the same 1296 steps
    assert ea.adaptation_epochs(cpu, 900) == 45
    assert 45 * 29 >= cpu.adapt_min_steps > 44 * 29
    # a larger folder is never cut below the preset's epochs
    assert ea.adaptation_epochs(cpu, 10_000) == 24
    # no floor at smoke: its 1 epoch whatever the size
    assert ea.adaptation_epochs("smoke", 8) == get_preset("smoke").adapt_epochs == 1
    with pytest.raises(ValueError, match="no labelled training clips"):
        ea.adaptation_epochs(cpu, 0)
    # a preset that does not adapt (gpu) needs the epochs given, and says so before loading data
    with pytest.raises(ValueError, match="preset gpu adapts for 0 epochs; pass epochs"):
        ea.adapt_encoder("/nonexistent/folder", "gpu", "/nonexistent/out", None)


def test_train_adapts_for_the_preset_s_epochs_when_none_are_given(smoke_folder, tmp_path,
                                                                   monkeypatch):
    seen = {}

    def fake_adapt(data, preset, out, encoder, **kw):
        seen.update(kw)
        raise RuntimeError("stop after recording the call")

    monkeypatch.setattr(ea, "adapt_encoder", fake_adapt)
    with pytest.raises(RuntimeError, match="stop after"):
        main(["train", "--data", str(smoke_folder), "--preset", "smoke", "--out", str(tmp_path / "r")])
    # None: adapt_encoder resolves the epochs from the folder's size (adaptation_epochs)
    assert seen["epochs"] is None
    seen.clear()
    with pytest.raises(RuntimeError, match="stop after"):
        main(["train", "--data", str(smoke_folder), "--preset", "smoke",
              "--out", str(tmp_path / "r2"), "--adapt-epochs", "3"])
    assert seen["epochs"] == 3


def test_adapt_encoder_without_epochs_takes_the_step_floor(smoke_folder, tmp_path):
    import dataclasses
    smoke = get_preset("smoke")
    n_clips = sum(1 for split in ("synth_train", "weak")
                  for _ in (smoke_folder / "audio" / split).glob("*.wav"))
    assert n_clips > smoke.encoder_batch
    steps = -(-n_clips // smoke.encoder_batch)
    floored = dataclasses.replace(smoke, adapt_epochs=1, adapt_min_steps=steps + 1)
    recipe = ea.adapt_encoder(smoke_folder, floored, tmp_path / "a", load_pretrained_encoder("smoke"),
                              progress=False)
    assert recipe["epochs"] == recipe["epochs_done"] == 2
    assert len(recipe["history"]) == 2
