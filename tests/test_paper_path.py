"""The paper path end to end, offline: `--encoder passt` (the paper preset's default)
through pre-training, stage 1, stage 2 (encoder trainable at the paper's layer-wise
rates, fused teacher), then `evaluate` and `predict` on 32 kHz clips, all through the CLI.

"Tiny size": the real PaSST-S class from hear21passt with its 12 blocks, 12 x T' patch
grid and class tokens, but width 48 and 2 heads, random weights saved to a checkpoint
file (`--passt-checkpoint`); the paper preset keeps its front end (32 kHz, 128 PaSST
mels, hop 10 ms, frames at 10 ms) with the context width matched (48), 6 s clips and
4 + 4 + 4 training clips, so every stage takes exactly one step. No weights are
downloaded: the download is replaced by a failure, which the error tests use.
"""
import json

import pytest

pytest.importorskip("hear21passt")

import torch  # noqa: E402

from matsed_lite import cli, presets  # noqa: E402
from matsed_lite.data.desed_lite import generate_desed_lite  # noqa: E402
from matsed_lite.models import passt_real  # noqa: E402
from matsed_lite.models.checkpoints import load_model  # noqa: E402
from matsed_lite.presets import get_preset  # noqa: E402
from matsed_lite.training.finetune import encoder_param_groups  # noqa: E402

WIDTH, HEADS = 48, 2
TINY_PAPER = get_preset("paper", clip_seconds=6.0, n_synth_train=4, n_weak=4, n_unlabeled=4,
                        n_validation=3, context_dim=WIDTH, context_heads=HEADS,
                        pretrain_epochs=1, stage1_epochs=1, stage2_epochs=1)
SPLITS = ["synth_train", "weak", "unlabeled", "validation"]


def _tiny_passt(**_ignored):
    from hear21passt.models import passt as passt_module

    return passt_module.PaSST(img_size=(128, 998), patch_size=16, stride=10, in_chans=1,
                              num_classes=527, embed_dim=WIDTH, depth=12, num_heads=HEADS,
                              distilled=True)


def _no_network(url, dst):
    raise OSError("Temporary failure in name resolution")


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """(data root, checkpoint file, folder) with the tiny paper preset in place of
    `paper` and hear21passt's PaSST-S builder returning the tiny net."""
    from hear21passt.models import passt as passt_module

    base = tmp_path_factory.mktemp("paper")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(presets.PRESETS, "paper", TINY_PAPER)
        mp.setattr(passt_module, "get_model", _tiny_passt)
        mp.setattr(passt_real, "_download", _no_network)
        mp.setenv("TORCH_HOME", str(base / "torch_home"))  # an empty hub cache
        root = base / "desed"
        generate_desed_lite(root, TINY_PAPER, seed=0, splits=SPLITS, progress=False)
        torch.manual_seed(0)
        checkpoint = base / passt_real.CHECKPOINT_NAME
        torch.save(_tiny_passt().state_dict(), checkpoint)
        yield root, checkpoint, base


def _run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def runs(paper):
    """pretrain -> stage 1 -> stage 2 through the CLI, one step each."""
    root, checkpoint, base = paper
    out = base / "runs"
    common = ["--data", root, "--preset", "paper", "--epochs", 1]
    assert cli.main([str(a) for a in ["pretrain", *common, "--out", out / "pretrain",
                                      "--passt-checkpoint", checkpoint]]) == 0
    assert cli.main([str(a) for a in ["finetune", "--stage", 1, *common, "--out", out / "stage1",
                                      "--init", out / "pretrain", "--encoder", "passt",
                                      "--passt-checkpoint", checkpoint]]) == 0
    assert cli.main([str(a) for a in ["finetune", "--stage", 2, *common, "--out", out / "stage2",
                                      "--init", out / "stage1"]]) == 0
    return out


def test_pretraining_runs_on_real_passt_frames(runs):
    recipe = json.loads((runs / "pretrain" / "recipe.json").read_text())
    config = json.loads((runs / "pretrain" / "run" / "config.json").read_text())
    assert config["encoder"] == "passt" and recipe["steps"] == 1
    assert (runs / "pretrain" / "context.pt").is_file()
    assert recipe["n_train_clips"] == 12 and recipe["n_valid_clips"] == 3


def test_stage1_holds_the_checkpoint_encoder_frozen(runs, paper):
    _, checkpoint, _ = paper
    model, info = load_model(runs / "stage1")
    assert info["encoder_kind"] == "passt"
    assert info["encoder_config"]["embed_dim"] == WIDTH and info["encoder_config"]["depth"] == 12
    assert info["frame_hop"] == pytest.approx(0.01)  # the paper's 10 ms frames
    recipe = json.loads((runs / "stage1" / "recipe.json").read_text())
    assert recipe["encoder"] == "passt" and recipe["steps_per_epoch"] == 1
    assert isinstance(model.encoder, passt_real.RealPaSSTFrames) and model.encoder.block == 10
    source = torch.load(checkpoint, weights_only=True)
    for key in ("blocks.0.attn.qkv.weight", "blocks.11.mlp.fc2.weight", "norm.weight"):
        assert torch.equal(model.encoder.net.state_dict()[key], source[key]), key


def test_stage2_trains_the_encoder_at_the_paper_rates(runs):
    recipe = json.loads((runs / "stage2" / "recipe.json").read_text())
    assert recipe["lr"] == {"encoder": 5e-6, "encoder_top": 1e-5, "context": 1e-4,
                            "heads": 2e-4}
    assert recipe["steps_per_epoch"] == 1 and recipe["encoder"] == "passt"
    assert recipe["teacher_features"].startswith("global_local(lambda=0.5")
    stage1, _ = load_model(runs / "stage1")
    student, _ = load_model(runs / "stage2", which="student")
    before, after = stage1.encoder.net.state_dict(), student.encoder.net.state_dict()
    for key in ("patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
                "blocks.8.mlp.fc1.weight", "norm.weight"):
        assert not torch.equal(before[key], after[key]), f"{key} did not train"
    # the groups: blocks 9-12, the final norm and the frame norm on top; the rest below
    enc = student.encoder
    low, top = encoder_param_groups(enc, 5e-6, 1e-5)
    expected_top = {id(q) for m in (*enc.net.blocks[8:], enc.net.norm, enc.frame_norm)
                    for q in m.parameters()}
    assert {id(q) for q in top["params"]} == expected_top
    assert {id(q) for q in low["params"]} == {id(q) for q in enc.parameters()} - expected_top
    assert any(q is enc.net.blocks[7].attn.qkv.weight for q in low["params"])


def test_evaluate_and_predict_offline(runs, paper, capsys, monkeypatch, tmp_path):
    """model.pt rebuilds the real-PaSST model from its record: no builder, no
    checkpoint file, no network."""
    from hear21passt.models import passt as passt_module

    root, _, _ = paper
    monkeypatch.setattr(passt_module, "get_model", lambda **k: pytest.fail("get_model"))
    code, out, err = _run(["evaluate", "--run", runs, "--data", root, "--json",
                           tmp_path / "eval.json", "--bootstrap", 0], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "eval.json").read_text())
    assert 0.0 <= res["psds1"] <= 1.0 and 0.0 <= res["psds2"] <= 1.0
    clips = sorted((root / "audio" / "validation").glob("*.wav"))
    code, out, err = _run(["predict", *clips, "--run", runs, "--out", tmp_path / "ev.tsv",
                           "--threshold", 0.01], capsys)
    assert code == 0, err
    lines = (tmp_path / "ev.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:2] == ["filename", "onset"] and len(lines) > 1


def test_train_threads_one_encoder_through_the_pipeline(paper, monkeypatch, capsys):
    """`train --passt-checkpoint` loads the real PaSST once and hands it to pre-training
    and stage 1; stage 2 gets the fused teacher (its own runs are tested above)."""
    from matsed_lite.training import finetune as ft
    from matsed_lite.training import reconstruction_pretraining as rp

    root, checkpoint, base = paper
    seen = []
    monkeypatch.setattr(rp, "pretrain_context", lambda *a, **k: seen.append(("pre", k)) or {})
    monkeypatch.setattr(ft, "finetune", lambda *a, **k: seen.append((k["stage"], k)) or {})
    code, _, err = _run(["train", "--data", root, "--preset", "paper", "--out",
                         base / "train_run", "--passt-checkpoint", checkpoint], capsys)
    assert code == 0, err
    (_, pre), (_, s1), (_, s2) = seen
    assert isinstance(pre["encoder"], passt_real.RealPaSSTFrames)
    assert s1["encoder"] is pre["encoder"] and "encoder" not in s2


def test_missing_weights_is_one_clear_line(paper, capsys, tmp_path):
    root, _, _ = paper
    code, _, err = _run(["pretrain", "--data", root, "--preset", "paper", "--out",
                         tmp_path / "a"], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: cannot load the PaSST-S AudioSet weights")
    assert "name resolution" in err and "--passt-checkpoint" in err
    missing = tmp_path / "nope.pt"
    code, _, err = _run(["finetune", "--stage", 1, "--data", root, "--preset", "paper",
                         "--out", tmp_path / "b", "--passt-checkpoint", missing], capsys)
    assert code == 1 and str(missing) in err and err.count("\n") == 1


def test_encoder_and_preset_must_fit(paper, capsys, tmp_path):
    root, checkpoint, base = paper
    code, _, err = _run(["pretrain", "--data", root, "--preset", "cpu", "--out", tmp_path / "a",
                         "--encoder", "passt"], capsys)
    assert code == 1 and "--preset paper" in err
    code, _, err = _run(["pretrain", "--data", root, "--preset", "cpu", "--out", tmp_path / "b",
                         "--passt-checkpoint", checkpoint], capsys)
    assert code == 1 and "--passt-checkpoint is for --encoder passt" in err


def test_stage2_refuses_another_encoder(runs, paper, capsys, tmp_path):
    root, _, _ = paper
    code, _, err = _run(["finetune", "--stage", 2, "--data", root, "--preset", "paper",
                         "--out", tmp_path / "s2", "--init", runs / "stage1",
                         "--encoder", "lite"], capsys)
    assert code == 1 and "stage 1's encoder (passt)" in err
