"""Masked-reconstruction pre-training: the loss, the target, a tiny run, exact resume."""
import json
import math

import pytest
import torch

from matsed_lite.training.engine import load_checkpoint
from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.training.masking import MaskedFrames
from matsed_lite.presets import get_preset
from matsed_lite.training.reconstruction_pretraining import (ReconstructionModel, frame_shift, load_context,
                                                    paper_lr_factor, pretrain_context,
                                                    reconstruction_loss)

# 4 s clips (200 frames), a one-layer context network, a dozen clips: seconds per run.
PRESET = get_preset("smoke", clip_seconds=4.0, n_synth_train=4, n_weak=2, n_unlabeled=4,
                    n_validation=3, context_depth=1, pretrain_epochs=3)
SPLITS = ["synth_train", "weak", "unlabeled", "validation"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("mr_data")
    generate_desed_lite(root, PRESET, seed=0, splits=SPLITS, progress=False)
    return root


@pytest.fixture(scope="module")
def tiny_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mr_run")
    res = pretrain_context(data, PRESET, out, seed=0, progress=False, batch_size=4, device="cpu")
    return out, res


def _frames(B=3, T=60, D=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D or PRESET.context_dim, generator=g)


def test_loss_counts_masked_valid_frames_only():
    torch.manual_seed(0)
    model = ReconstructionModel(PRESET).eval()
    x = _frames()
    valid = torch.ones(x.shape[:2], dtype=torch.bool)
    valid[0, -15:] = False                                        # padding at the end of clip 0
    loss, used = reconstruction_loss(model, x, valid, torch.Generator().manual_seed(5))
    assert not used[0, -15:].any() and used.any()

    # Add a huge error on every frame the loss must ignore: unmasked or padded.
    hook = model.head.register_forward_hook(lambda m, i, out: out + 100.0 * (~used)[..., None])
    loss2, used2 = reconstruction_loss(model, x, valid, torch.Generator().manual_seed(5))
    hook.remove()
    assert torch.equal(used, used2)
    assert torch.allclose(loss, loss2)
    # ...and an error on the masked frames does count.
    hook = model.head.register_forward_hook(lambda m, i, out: out + 1.0 * used[..., None])
    loss3, _ = reconstruction_loss(model, x, valid, torch.Generator().manual_seed(5))
    hook.remove()
    assert loss3 > loss + 0.5


def test_target_is_detached():
    torch.manual_seed(0)
    model = ReconstructionModel(PRESET)
    # Every frame masked and replaced by the token: the input no longer depends on x,
    # so any gradient reaching x would have come through the target.
    model.masker = MaskedFrames(PRESET.context_dim, ratio=1.0, block=10, p_token=1.0, p_random=0.0)
    x = _frames().requires_grad_(True)
    loss, _ = reconstruction_loss(model, x)
    loss.backward()
    assert x.grad is None or torch.count_nonzero(x.grad) == 0
    assert model.masker.mask_token.grad is not None and model.masker.mask_token.grad.abs().sum() > 0


def test_frame_shift_rolls_frames_and_mask_together():
    x = _frames(B=2, T=50)
    valid = torch.arange(50)[None].expand(2, -1) < torch.tensor([[30], [50]])
    g = torch.Generator().manual_seed(3)
    y, v = frame_shift(x, valid, std=0.2, generator=g)
    shifts = torch.round(torch.randn(2, generator=torch.Generator().manual_seed(3)) * 0.2 * 50).long()
    for b in range(2):
        assert torch.equal(y[b], torch.roll(x[b], int(shifts[b]), dims=0))
        assert torch.equal(v[b], torch.roll(valid[b], int(shifts[b]), dims=0))


def test_schedule_has_the_paper_shape():
    assert paper_lr_factor(0.0) == pytest.approx(0.1)
    assert paper_lr_factor(0.5 / 15) == pytest.approx(0.55)
    assert paper_lr_factor(1 / 15) == paper_lr_factor(0.5) == paper_lr_factor(10 / 15) == 1.0
    assert paper_lr_factor(1.0) == pytest.approx(math.exp(-1.25))
    vals = [paper_lr_factor(t / 100) for t in range(67, 101)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))


def test_tiny_run_learns_and_saves_a_loadable_context(tiny_run):
    out, res = tiny_run
    val = res["val_masked_mse"]
    assert len(val) == 3 and min(val[1:]) < val[0]
    assert res["best_epoch"] == 1 + val.index(min(val))
    recipe = json.loads((out / "recipe.json").read_text())
    for key in ("preset", "seed", "pos", "epochs", "best_epoch", "val_masked_mse",
                "interpolation_val_masked_mse", "seconds"):
        assert key in recipe
    assert recipe["interpolation_val_masked_mse"] > 0
    assert (out / "run" / "log.jsonl").is_file() and (out / "run" / "last.pt").is_file()

    net = load_context(out / "context.pt", PRESET)
    best = load_checkpoint(out / "run" / "best.pt")["model"]
    model = ReconstructionModel(PRESET)
    model.load_state_dict(best)
    x = _frames(B=2, T=PRESET.n_frames)
    with torch.no_grad():
        assert torch.equal(net(x), model.context.eval()(x))
    with pytest.raises(ValueError, match="does not fit"):
        load_context(out / "context.pt", PRESET, pos="absolute")


def test_resume_after_interruption_gives_identical_weights(data, tiny_run, tmp_path):
    out_a, res_a = tiny_run
    out_b = tmp_path / "b"
    kw = dict(seed=0, progress=False, batch_size=4, device="cpu")
    part = pretrain_context(data, PRESET, out_b, stop_after_epoch=1, **kw)
    assert part["epochs_done"] == 1
    res_b = pretrain_context(data, PRESET, out_b, resume=True, **kw)
    assert res_b["epochs_done"] == 3 and res_b["val_masked_mse"] == res_a["val_masked_mse"]
    a = load_checkpoint(out_a / "run" / "last.pt")["model"]
    b = load_checkpoint(out_b / "run" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ca, cb = torch.load(out_a / "context.pt"), torch.load(out_b / "context.pt")
    assert all(torch.equal(ca[k], cb[k]) for k in ca)
    # Resuming with other settings is refused, with the difference named.
    with pytest.raises(ValueError, match="other settings.*pos"):
        pretrain_context(data, PRESET, out_b, resume=True, pos="absolute", **kw)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="matsed-lite synth"):
        pretrain_context(tmp_path / "nowhere", PRESET, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="pos must be one of"):
        pretrain_context(tmp_path, PRESET, tmp_path / "out", pos="rotary", progress=False)
    with pytest.raises(FileNotFoundError, match="no context weights"):
        load_context(tmp_path / "context.pt", PRESET)
