"""Mean-teacher fine-tuning: batch mixing, loss terms, ramps, freezing, resume, smoke runs."""
import json
import math

import numpy as np
import pytest
import torch

from matsed_lite.data.labels import pool_time
from matsed_lite.models.checkpoints import load_model
from matsed_lite.presets import RECIPES, Recipe, get_preset
from matsed_lite.training.augment import augment_batch
from matsed_lite.training.finetune import finetune, train_crnn
from matsed_lite.training.losses import consistency_losses, supervised_losses
from matsed_lite.training.mean_teacher import step_generator
from matsed_lite.training.mixed_batches import MixedBatches, mixed_batch_plan
from matsed_lite.training.ramps import consistency_weight, ramp_value
from matsed_lite.data.desed_lite import generate_desed_lite

PRESET = "smoke"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The runs are tiny; on a shared 2-core machine extra threads only contend.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mt_data")
    generate_desed_lite(root, PRESET, seed=0, progress=False,
                        splits=["synth_train", "weak", "unlabeled", "validation"])
    return root


# ---------------------------------------------------------------------------
# mixed batches

def test_plan_has_the_preset_mix_and_one_pass_over_strong():
    sizes, batch = {"strong": 24, "weak": 12, "unlabeled": 24}, {"strong": 4, "weak": 2, "unlabeled": 4}
    plan = mixed_batch_plan(sizes, batch, seed=0, epoch=1)
    assert len(plan) == 6
    assert all((len(b["strong"]), len(b["weak"]), len(b["unlabeled"])) == (4, 2, 4) for b in plan)
    assert sorted(i for b in plan for i in b["strong"]) == list(range(24))  # one pass
    assert sorted(i for b in plan for i in b["weak"]) == list(range(12))
    assert plan == mixed_batch_plan(sizes, batch, seed=0, epoch=1)      # repeatable
    assert plan != mixed_batch_plan(sizes, batch, seed=0, epoch=2)      # a new order per epoch
    assert plan != mixed_batch_plan(sizes, batch, seed=1, epoch=1)


def test_plan_wraps_small_pools_and_skips_empty_ones():
    plan = mixed_batch_plan({"strong": 10, "weak": 3, "unlabeled": 0},
                               {"strong": 2, "weak": 2, "unlabeled": 4}, seed=0, epoch=3)
    assert len(plan) == 5
    weak = [i for b in plan for i in b["weak"]]
    assert len(weak) == 10 and set(weak) == {0, 1, 2}
    assert all(b["unlabeled"] == [] for b in plan)
    with pytest.raises(ValueError, match="strong"):
        mixed_batch_plan({"strong": 0}, {"strong": 2}, 0, 1)


def test_plan_min_steps_lengthens_small_folders_only():
    """Preset.min_steps_per_epoch: a folder with fewer strong clips than the floor covers
    gets the floor's steps, the strong clips wrapping around (each seen equally often, +-1);
    a folder that already has that many steps keeps its one pass, batch for batch."""
    sizes, batch = {"strong": 10, "weak": 6, "unlabeled": 8}, {"strong": 4, "weak": 2, "unlabeled": 4}
    plan = mixed_batch_plan(sizes, batch, seed=0, epoch=1, min_steps=7)
    assert len(plan) == 7
    assert all((len(b["strong"]), len(b["weak"]), len(b["unlabeled"])) == (4, 2, 4) for b in plan)
    counts = np.bincount([i for b in plan for i in b["strong"]], minlength=10)
    assert counts.sum() == 28 and counts.min() == 2 and counts.max() == 3
    big = {"strong": 24, "weak": 12, "unlabeled": 24}
    assert mixed_batch_plan(big, batch, 0, 1, min_steps=6) == mixed_batch_plan(big, batch, 0, 1)
    assert mixed_batch_plan(big, batch, 0, 1, min_steps=0) == mixed_batch_plan(big, batch, 0, 1)
    assert len(MixedBatches({k: FakeStore(n, k) for k, n in sizes.items()}, batch, 0,
                            min_steps=7)) == 7
    with pytest.raises(ValueError, match="min_steps"):
        mixed_batch_plan(sizes, batch, 0, 1, min_steps=-1)


class FakeStore:
    def __init__(self, n, kind, T=20, K=3):
        self.n, self.kind, self.T, self.K = n, kind, T, K

    def __len__(self):
        return self.n

    @property
    def filenames(self):
        return [f"{self.kind}_{i}.wav" for i in range(self.n)]

    def item(self, i):
        return {"mel": torch.full((8, self.T), float(i)), "frame_mask": torch.ones(self.T, dtype=torch.bool),
                "strong": torch.zeros(self.T, self.K), "weak": torch.zeros(self.K),
                "has_strong": self.kind == "strong", "has_weak": self.kind != "unlabeled",
                "filename": self.filenames[i]}


def test_mixed_batches_collate_in_kind_order():
    data = MixedBatches({k: FakeStore(n, k) for k, n in
                            [("strong", 9), ("weak", 5), ("unlabeled", 7)]},
                           {"strong": 3, "weak": 1, "unlabeled": 2}, seed=4)
    assert len(data) == 3
    batches = list(data(1))
    assert len(batches) == 3
    b = batches[0]
    assert b["mel"].shape == (6, 8, 20) and b["strong"].shape == (6, 20, 3)
    assert b["has_strong"].tolist() == [True] * 3 + [False] * 3
    assert b["has_weak"].tolist() == [True] * 4 + [False] * 2
    assert [n.split("_")[0] for n in b["filename"]] == ["strong"] * 3 + ["weak"] + ["unlabeled"] * 2
    again = list(data(1))
    assert all(torch.equal(x["mel"], y["mel"]) for x, y in zip(batches, again))


# ---------------------------------------------------------------------------
# losses

def _outputs(B=6, T=10, K=3, seed=0, at=True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, K, generator=g)
    probs = torch.sigmoid(logits)
    out = {"frame_logits": logits, "frame_probs": probs,
           "clip_probs": probs.pow(2).sum(1) / probs.sum(1)}
    if at:
        out["at_logits"] = torch.randn(B, K, generator=g)
        out["at_probs"] = torch.sigmoid(out["at_logits"])
    return out


def _targets(B=6, T=10, K=3):
    g = torch.Generator().manual_seed(1)
    return {"strong": (torch.rand(B, T, K, generator=g) > 0.5).float(),
            "weak": (torch.rand(B, K, generator=g) > 0.5).float(),
            "frame_mask": torch.ones(B, T, dtype=torch.bool),
            "has_strong": torch.tensor([1, 1, 0, 0, 0, 0]).bool(),
            "has_weak": torch.tensor([1, 1, 1, 1, 0, 0]).bool()}


def test_strong_loss_sees_only_strong_clips_and_valid_frames():
    recipe = RECIPES["stage1"]
    out, tg = _outputs(), _targets()
    base = supervised_losses(out, tg, recipe)
    assert set(base) == {"strong", "weak", "at"} and all(v > 0 for v in base.values())
    # Change everything a non-strong clip could feed the strong term: no effect.
    tg2 = dict(tg, strong=tg["strong"].clone())
    tg2["strong"][2:] = 1 - tg2["strong"][2:]
    assert supervised_losses(out, tg2, recipe)["strong"] == pytest.approx(base["strong"].item())
    # Padding frames of a strong clip do not count either.
    tg3 = dict(tg, frame_mask=tg["frame_mask"].clone(), strong=tg["strong"].clone())
    tg3["frame_mask"][0, 5:] = False
    tg3["strong"][0, 5:] = 1 - tg3["strong"][0, 5:]
    tg4 = dict(tg3, strong=tg["strong"])
    assert supervised_losses(out, tg3, recipe)["strong"] == pytest.approx(
        supervised_losses(out, tg4, recipe)["strong"].item())


def test_weak_and_at_losses_ignore_unlabeled_and_vanish_when_right():
    recipe = RECIPES["stage1"]
    out, tg = _outputs(), _targets()
    base = supervised_losses(out, tg, recipe)
    tg2 = dict(tg, weak=tg["weak"].clone())
    tg2["weak"][4:] = 1 - tg2["weak"][4:]   # unlabeled clips' (meaningless) weak labels
    other = supervised_losses(out, tg2, recipe)
    assert other["weak"] == pytest.approx(base["weak"].item())
    assert other["at"] == pytest.approx(base["at"].item())
    # Confident and right everywhere: every term ~0.
    big = 30.0
    perfect = {"frame_logits": (2 * tg["strong"] - 1) * big,
               "frame_probs": tg["strong"].clone(), "clip_probs": tg["weak"].clone(),
               "at_logits": (2 * tg["weak"] - 1) * big}
    assert all(v < 1e-5 for v in supervised_losses(perfect, tg, recipe).values())
    # Without any strong clip in the batch, the strong term is exactly 0.
    none = dict(tg, has_strong=torch.zeros(6, dtype=torch.bool))
    assert supervised_losses(out, none, recipe)["strong"] == 0


def test_consistency_zero_when_teacher_equals_student_and_crnn_terms():
    recipe = RECIPES["stage2"]
    s = _outputs()
    mask = torch.ones(6, 10, dtype=torch.bool)
    # Teacher == student: frames and AT terms vanish; "clip" compares the pooled
    # score with the teacher's AT output, so give them equal values to zero it too.
    same = {k: v.clone() for k, v in s.items()}
    same["at_probs"] = s["clip_probs"].clone()
    s_eq = dict(s, at_probs=s["clip_probs"].clone())
    c = consistency_losses(s_eq, same, mask, recipe)
    assert set(c) == {"frames", "clip", "at"} and all(v == 0 for v in c.values())
    t = _outputs(seed=5)
    c = consistency_losses(s, t, mask, recipe)
    assert all(v > 0 for v in c.values())
    assert c["clip"] == pytest.approx(0.5 * torch.mean((s["clip_probs"] - t["at_probs"]) ** 2).item())
    assert c["at"] == pytest.approx(2 * torch.mean((s["at_probs"] - t["at_probs"]) ** 2).item())
    # A model without an AT head (the CRNN): DCASE's frames + pooled-vs-pooled terms.
    s, t = _outputs(at=False), _outputs(seed=5, at=False)
    c = consistency_losses(s, t, mask, RECIPES["crnn"])
    assert set(c) == {"frames", "clip"}
    assert c["clip"] == pytest.approx(torch.mean((s["clip_probs"] - t["clip_probs"]) ** 2).item())
    assert set(supervised_losses(s, _targets(), RECIPES["crnn"])) == {"strong", "weak"}


def test_pool_time_to_a_coarser_frame_rate():
    y = torch.zeros(1, 8, 2)
    y[0, 5, 1] = 1
    p = pool_time(y, 4)  # re-exported from labels
    assert p.shape == (1, 2, 2) and p[0, 1, 1] == 1 and p.sum() == 1
    m = torch.tensor([[True] * 5 + [False] * 3])
    assert pool_time(m, 4).tolist() == [[True, True]]


# ---------------------------------------------------------------------------
# ramps

def test_consistency_ramps():
    s1, s2, crnn = RECIPES["stage1"], RECIPES["stage2"], RECIPES["crnn"]
    # Stage 1 (15 epochs): linear to 2 over 8 epochs.
    assert [consistency_weight(s1, e, 15) for e in (0, 4, 8, 12)] == pytest.approx([0, 1, 2, 2])
    # Stage 2 (30 epochs): 40 sigmoid(10 (x - 0.5)) over 15 epochs.
    assert consistency_weight(s2, 7.5, 30) == pytest.approx(20.0)
    assert consistency_weight(s2, 0, 30) == pytest.approx(40 / (1 + math.exp(5)))
    assert consistency_weight(s2, 15, 30) == consistency_weight(s2, 29, 30) == pytest.approx(
        40 / (1 + math.exp(-5)))
    # The same shape at a lite budget: halfway through the ramp of a 6-epoch run.
    assert consistency_weight(s2, 1.5, 6) == pytest.approx(20.0)
    # CRNN (DCASE): 2 exp(-5 (1 - t/50)^2) over 50 of 200 epochs.
    assert consistency_weight(crnn, 25, 200) == pytest.approx(2 * math.exp(-5 * 0.25))
    assert consistency_weight(crnn, 100, 200) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        ramp_value("cosine", 0.5)


def test_augmentation_is_seeded_by_step_and_rolls_labels():
    from matsed_lite.presets import get_preset

    p = get_preset(PRESET)
    T, K = p.n_frames, 3
    strong = torch.zeros(4, T, K)
    strong[:, 100:150, 0] = 1
    mel = torch.zeros(4, p.n_mels, T)
    mel[:, :, 100:150] = 1.0  # the "event" is where the label is
    batch = {"mel": mel, "strong": strong, "weak": strong.amax(1),
             "frame_mask": torch.ones(4, T, dtype=torch.bool),
             "has_strong": torch.tensor([True, True, False, False]),
             "has_weak": torch.tensor([True, True, True, False])}
    recipe = Recipe("t", lr_heads=1e-3, mixup_p=0.0)
    a = augment_batch(batch, recipe, p, step_generator(0, 5))
    b = augment_batch(batch, recipe, p, step_generator(0, 5))
    c = augment_batch(batch, recipe, p, step_generator(0, 6))
    assert torch.equal(a["mel"], b["mel"]) and not torch.equal(a["mel"], c["mel"])
    assert torch.equal(a["mel"][:, 0] > 0.5, a["strong"][..., 0] > 0.5)  # labels moved with audio


# ---------------------------------------------------------------------------
# runs

def _state(path, which="model"):
    return torch.load(path / "model.pt", weights_only=False)[which]


def test_stage1_trains_heads_only(data_root, tmp_path):
    from matsed_lite.models.matsed import ContextNetwork
    from matsed_lite.models.passt_lite import load_pretrained_encoder
    from matsed_lite.presets import get_preset

    p = get_preset(PRESET)
    torch.manual_seed(3)
    ctx = ContextNetwork(p.context_dim, p.context_depth, p.context_heads, "relative", p.context_mlp_ratio)
    torch.save(ctx.state_dict(), tmp_path / "context.pt")
    res = finetune(data_root, PRESET, tmp_path / "s1", stage=1, init=tmp_path / "context.pt",
                      epochs=1, progress=False)
    enc = load_pretrained_encoder(p).state_dict()
    for which in ("model", "student"):
        sd = _state(tmp_path / "s1", which)
        for k, v in enc.items():
            assert torch.equal(sd["encoder." + k], v), k
        for k, v in ctx.state_dict().items():
            assert torch.equal(sd["context." + k], v), k
    model, info = load_model(tmp_path / "s1")
    assert info["classes"] == res["classes"] and info["preset"] == PRESET and info["stage"] == 1
    assert res["lr"] == {"heads": pytest.approx(5e-3)}  # the paper's 2e-4 x LITE_LR_SCALE[1] (25)
    assert res["curves"]["train_loss"][0] > 0
    log = [json.loads(l) for l in (tmp_path / "s1" / "log.jsonl").read_text().splitlines()]
    assert log[0]["train/sup_strong"] > 0 and log[0]["train/w_cons"] > 0


def test_stage1_heads_change(data_root, tmp_path):
    """The heads train; the teacher (an EMA of the student) differs from the
    student in the heads only."""
    finetune(data_root, PRESET, tmp_path / "a", stage=1, epochs=1, progress=False, seed=1)
    ck = torch.load(tmp_path / "a" / "model.pt", weights_only=False)
    student, teacher = ck["student"], ck["model"]
    diff = [k for k in student if not torch.equal(student[k], teacher[k])]
    assert {"sed_head.weight", "at_head.weight"} <= set(diff)
    assert all(k.startswith(("sed_head", "at_head")) for k in diff)


def test_stage1_then_stage2_smoke_and_exact_resume(data_root, tmp_path):
    r1 = finetune(data_root, PRESET, tmp_path / "s1", stage=1, epochs=2, progress=False)
    assert (tmp_path / "s1" / "model.pt").is_file() and (tmp_path / "s1" / "recipe.json").is_file()
    rec = json.loads((tmp_path / "s1" / "recipe.json").read_text())
    assert len(rec["curves"]["teacher_psds1"]) == 2 and rec["best_epoch"] in (1, 2)
    for k in ("student_psds1", "teacher_psds1", "student_psds2", "teacher_psds2"):
        assert all(0 <= v <= 1 for v in rec["curves"][k])

    # Resume: stop after epoch 1, continue; identical to the uninterrupted run.
    finetune(data_root, PRESET, tmp_path / "s1b", stage=1, epochs=2, progress=False,
                stop_after_epoch=1)
    r1b = finetune(data_root, PRESET, tmp_path / "s1b", stage=1, epochs=2, progress=False,
                      resume=True)
    for which in ("model", "student"):
        a, b = _state(tmp_path / "s1", which), _state(tmp_path / "s1b", which)
        assert all(torch.equal(a[k], b[k]) for k in a), which
    assert r1b["curves"]["teacher_psds1"] == r1["curves"]["teacher_psds1"]

    r2 = finetune(data_root, PRESET, tmp_path / "s2", stage=2, init=tmp_path / "s1", epochs=1,
                     progress=False)
    assert (tmp_path / "s2" / "model.pt").is_file()
    assert 0 <= r2["best"]["teacher_psds1"] <= 1 and 0 <= r2["best"]["student_psds2"] <= 1
    assert set(r2["lr"]) == {"encoder", "encoder_top", "context", "heads"}
    assert r2["lr"]["encoder"] < r2["lr"]["encoder_top"] < r2["lr"]["context"] < r2["lr"]["heads"]
    # stage 2 ramps to the preset's consistency weight (2 at the lite presets, not the paper's 40)
    assert r2["recipe"]["max_consistency"] == get_preset(PRESET).stage2_max_consistency == 2.0
    log = [json.loads(l) for l in (tmp_path / "s2" / "log.jsonl").read_text().splitlines()]
    assert 0 < max(r["train/w_cons"] for r in log if "train/w_cons" in r) <= 2.0
    # a stage 2 started by a version that ramped to the paper's 40 recorded no weight:
    # resuming it with this one's 2 is refused, naming the setting
    settings = tmp_path / "s2" / "settings.json"
    saved = json.loads(settings.read_text())
    assert saved.pop("max_consistency") == 2.0
    settings.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="max_consistency: run None, now 2.0"):
        finetune(data_root, PRESET, tmp_path / "s2", stage=2, init=tmp_path / "s1", epochs=1,
                 progress=False, resume=True)
    model, info = load_model(tmp_path / "s2")
    assert info["stage"] == 2 and info["classes"] == r1["classes"]
    # Stage 2 trains the encoder too (at its low rate): its weights moved from stage 1's.
    s1, s2 = _state(tmp_path / "s1"), _state(tmp_path / "s2", "student")
    assert not torch.equal(s1["encoder.patch_embed.weight"], s2["encoder.patch_embed.weight"])
    assert not torch.equal(s1["context.norm.weight"], s2["context.norm.weight"])


def test_step_floor_lengthens_a_small_folders_epochs_and_is_recorded(data_root, tmp_path):
    """A preset whose min_steps_per_epoch exceeds the folder's pass over its strong clips
    trains that many steps per epoch and records the floor; a run started without it
    (no key) is not resumed with longer epochs."""
    natural = get_preset(PRESET).n_synth_train // get_preset(PRESET).batch_strong
    floored = get_preset(PRESET, min_steps_per_epoch=natural + 3)
    res = finetune(data_root, floored, tmp_path / "s1", stage=1, epochs=1, progress=False)
    assert res["steps_per_epoch"] == natural + 3
    log = [json.loads(l) for l in (tmp_path / "s1" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == natural + 3
    settings = tmp_path / "s1" / "settings.json"
    saved = json.loads(settings.read_text())
    assert saved.pop("min_steps_per_epoch") == natural + 3
    settings.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="min_steps_per_epoch"):
        finetune(data_root, floored, tmp_path / "s1", stage=1, epochs=1, progress=False,
                 resume=True)
    # a floor below the folder's pass changes nothing and records nothing
    low = finetune(data_root, get_preset(PRESET, min_steps_per_epoch=2), tmp_path / "low",
                   stage=1, epochs=1, progress=False, stop_after_epoch=1)
    assert low["steps_per_epoch"] == natural
    assert "min_steps_per_epoch" not in json.loads((tmp_path / "low" / "settings.json").read_text())


def test_stage2_needs_stage1(data_root, tmp_path):
    with pytest.raises(ValueError, match="stage 1"):
        finetune(data_root, PRESET, tmp_path, stage=2, init=None, progress=False)
    with pytest.raises(ValueError, match="stage"):
        finetune(data_root, PRESET, tmp_path, stage=3, progress=False)


def test_crnn_trains_through_the_same_step(data_root, tmp_path):
    pytest.importorskip("matsed_lite.models.crnn")
    res = train_crnn(data_root, PRESET, tmp_path / "crnn", epochs=1, progress=False)
    assert (tmp_path / "crnn" / "model.pt").is_file()
    assert 0 <= res["best"]["teacher_psds1"] <= 1
    log = json.loads((tmp_path / "crnn" / "log.jsonl").read_text().splitlines()[0])
    assert "train/cons_frames" in log and "train/cons_at" not in log and "train/sup_at" not in log
    model, info = load_model(tmp_path / "crnn")
    # the smoke preset's geometry ("small"): 40 ms frames, 2x fewer than the log-mel's
    assert info["kind"] == "crnn" and model.time_downsampling == 2


def test_crnn_geometry_is_trained_recorded_and_held_on_resume(data_root, tmp_path):
    """train_crnn(geometry="small"): 40 ms frames, the architecture in model.pt and
    recipe.json, and a resume under another geometry refused."""
    res = train_crnn(data_root, PRESET, tmp_path / "small", epochs=1, progress=False,
                     geometry="small", recipe="crnn_supervised")
    assert res["geometry"] == "small" and res["crnn_config"]["filters"] == [16, 32, 64, 128]
    assert res["frame_hop"] == pytest.approx(0.04)
    model, info = load_model(tmp_path / "small")
    assert model.time_downsampling == 2 and info["frame_hop"] == pytest.approx(0.04)
    with pytest.raises(ValueError, match="geometry"):
        train_crnn(data_root, PRESET, tmp_path / "small", epochs=1, progress=False, resume=True,
                   recipe="crnn_supervised", geometry="dcase")
    with pytest.raises(ValueError, match="unknown CRNN geometry 'big'"):
        train_crnn(data_root, PRESET, tmp_path / "big", epochs=1, progress=False, geometry="big")


def test_crnn_recipe_overrides_take_effect_and_are_recorded(data_root, tmp_path):
    """train_crnn(recipe_overrides=...) (benchmarks/crnn_recipes.py): without the ramp
    driving the learning rate (the recipe's default), the first epoch runs at the full rate; a resume with
    other overrides is refused."""
    ramped = train_crnn(data_root, PRESET, tmp_path / "ramped", epochs=12, progress=False,
                        stop_after_epoch=1, recipe_overrides={"lr_follows_ramp": True})
    flat = train_crnn(data_root, PRESET, tmp_path / "flat", epochs=12, progress=False,
                      stop_after_epoch=1, recipe_overrides={"lr_follows_ramp": False})
    lr = {k: json.loads((tmp_path / k / "log.jsonl").read_text().splitlines()[0])["lr"]
          for k in ("ramped", "flat")}
    assert lr["flat"] == pytest.approx(1e-3) and lr["ramped"] < 0.5e-3
    assert flat["recipe"]["lr_follows_ramp"] is False and ramped["recipe"]["lr_follows_ramp"]
    with pytest.raises(ValueError, match="recipe_overrides"):
        train_crnn(data_root, PRESET, tmp_path / "flat", epochs=12, progress=False, resume=True,
                   recipe_overrides={"lr_follows_ramp": True})


def test_recipe_overrides_change_the_stage_and_are_recorded(data_root, tmp_path):
    """finetune(recipe_overrides=...) is how benchmarks/stage2_schedules.py tries schedules:
    the override takes effect (no consistency weight at all), recipe.json records it, and
    resuming with other overrides is refused."""
    res = finetune(data_root, PRESET, tmp_path / "s1", stage=1, epochs=1, progress=False,
                   recipe_overrides={"max_consistency": 0.0}, stop_after_epoch=1)
    assert res["recipe"]["max_consistency"] == 0.0
    log = [json.loads(l) for l in (tmp_path / "s1" / "log.jsonl").read_text().splitlines()]
    assert log[0]["train/w_cons"] == 0.0
    with pytest.raises(ValueError, match="recipe_overrides"):
        finetune(data_root, PRESET, tmp_path / "s1", stage=1, epochs=1, progress=False,
                 resume=True, recipe_overrides={"max_consistency": 1.0})
    with pytest.raises(TypeError, match="no_such_field"):
        finetune(data_root, PRESET, tmp_path / "s2", stage=1, epochs=1, progress=False,
                 recipe_overrides={"no_such_field": 1})
