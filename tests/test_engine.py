"""The training engine: exact resume, EMA, gradient clipping, logs, best checkpoint."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from matsed_lite.training.engine import (EpochSampler, ema_alpha, fit, load_checkpoint, update_ema,
                                warmup_cosine)


class Points(torch.utils.data.Dataset):
    def __init__(self, n=24):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 1))


def noisy_step(model, batch, state):
    # Uses torch, numpy and dropout randomness: all must be restored on resume.
    x = batch["x"] + 0.05 * torch.randn_like(batch["x"]) * float(np.random.rand())
    loss = ((model(x).squeeze(-1) - batch["y"]) ** 2).mean()
    return loss, {"abs": (model(x).squeeze(-1) - batch["y"]).abs().mean()}


def make_eval(data):
    def evaluate(model, state):
        return {"val/loss": ((model(data.x).squeeze(-1) - data.y) ** 2).mean()}
    return evaluate


def run(out_dir, train_step=noisy_step, **kw):
    data = Points()
    model = tiny_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = warmup_cosine(opt, total_steps=4 * 6, warmup_steps=3)
    args = dict(optimizer=opt, epochs=4, out_dir=out_dir, evaluate=make_eval(data),
                scheduler=sched, batch_size=4, seed=7, ema_max_alpha=0.9, grad_clip=1.0,
                monitor="val/loss", mode="min", progress=False, device="cpu")
    args.update(kw)
    res = fit(model, train_step, data, **args)
    return model, res


def _strip(history):
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in history]


def test_resume_after_crash_matches_uninterrupted(tmp_path):
    model_a, res_a = run(tmp_path / "a")

    calls = {"n": 0}

    def crashing_step(model, batch, state):
        calls["n"] += 1
        if state.epoch == 3 and calls["n"] > 14:  # part-way through epoch 3
            raise RuntimeError("simulated crash")
        return noisy_step(model, batch, state)

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path / "b", train_step=crashing_step)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2
    model_b, res_b = run(tmp_path / "b", resume=True)

    for (k, va), vb in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(va, vb), k
    ta = res_a["state"].teacher.state_dict()
    tb = res_b["state"].teacher.state_dict()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    assert _strip(res_a["history"]) == _strip(res_b["history"])
    log_b = [json.loads(l) for l in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert _strip(log_b) == _strip(res_a["history"])
    assert res_b["best_epoch"] == res_a["best_epoch"]


def test_stop_after_epoch_then_resume(tmp_path):
    model_a, res_a = run(tmp_path / "a")
    _, res_stop = run(tmp_path / "b", stop_after_epoch=1)
    assert res_stop["epochs_done"] == 1
    model_b, res_b = run(tmp_path / "b", resume=True)
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(),
                                                 model_b.state_dict().values()))
    assert _strip(res_a["history"]) == _strip(res_b["history"])


def test_time_budget_ends_the_run_after_the_epoch_that_passes_it(tmp_path):
    slow_seconds = []

    def slow_step(model, batch, state):
        slow_seconds.append(state.epoch)
        return noisy_step(model, batch, state)

    # A budget of 0 s is passed by the first epoch: one epoch, then a finished run.
    _, res = run(tmp_path / "zero", train_step=slow_step, time_budget_s=0.0)
    assert res["epochs_done"] == 1 and set(slow_seconds) == {1}
    assert (tmp_path / "zero" / "best.pt").is_file()
    # A budget no epoch reaches changes nothing.
    _, res_all = run(tmp_path / "all", time_budget_s=1e6)
    _, res_none = run(tmp_path / "none")
    assert res_all["epochs_done"] == 4 and _strip(res_all["history"]) == _strip(res_none["history"])
    # The CPU clock: the process's CPU seconds, logged per epoch and growing.
    _, res_cpu = run(tmp_path / "cpu", time_budget_s=0.0, budget_clock="cpu")
    assert res_cpu["epochs_done"] == 1
    cpu = [h["cpu_seconds"] for h in res_none["history"]]
    assert all(b > a > 0 for a, b in zip(cpu, cpu[1:]))
    with pytest.raises(ValueError, match="budget_clock"):
        run(tmp_path / "bad", budget_clock="gpu")


def test_log_has_one_line_per_epoch(tmp_path):
    _, res = run(tmp_path, epochs=3)
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3]
    assert lines[-1]["step"] == 18  # 24 points / batch 4 = 6 steps per epoch
    for key in ("train/loss", "train/abs", "train/grad_norm", "val/loss", "lr", "best_epoch"):
        assert key in lines[0]
    # A fresh (non-resumed) run starts a new log.
    run(tmp_path, epochs=1)
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_ema_alpha_and_update_math():
    assert ema_alpha(1, 0.999) == 0.0
    assert ema_alpha(10, 0.999) == pytest.approx(0.9)
    assert ema_alpha(5000, 0.999) == pytest.approx(0.999)
    t, s = nn.Linear(1, 1), nn.Linear(1, 1)
    with torch.no_grad():
        t.weight.fill_(1.0), s.weight.fill_(3.0), t.bias.fill_(0.0), s.bias.fill_(1.0)
    update_ema(t, s, 0.75)
    assert t.weight.item() == pytest.approx(0.75 * 1 + 0.25 * 3)
    assert t.bias.item() == pytest.approx(0.25)


def test_ema_teacher_in_fit(tmp_path):
    """Step 1: alpha 0 (teacher = student); step 2: alpha 1/2."""
    seen = []
    batches = [{"x": torch.randn(4, 4), "y": torch.randn(4)} for _ in range(2)]

    def step(model, batch, state):
        seen.append([p.detach().clone() for p in model.parameters()])
        return ((model(batch["x"]).squeeze(-1) - batch["y"]) ** 2).mean(), {}

    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    res = fit(model, step, lambda epoch: batches, optimizer=opt, epochs=1, out_dir=tmp_path,
              ema_max_alpha=0.999, progress=False, device="cpu")
    after1 = seen[1]                       # weights after optimizer step 1
    final = list(model.parameters())       # after step 2
    for t, a, f in zip(res["state"].teacher.parameters(), after1, final):
        assert torch.allclose(t, 0.5 * a + 0.5 * f.detach())
        assert not t.requires_grad


def test_grad_clipping_clips(tmp_path):
    def step(model, batch, state):
        return (model.w * torch.tensor([300.0, 400.0, 0.0])).sum(), {}

    for clip, expected in ((1.0, [-0.6, -0.8, 0.0]), (None, [-300.0, -400.0, 0.0])):
        model = nn.Module()
        model.w = nn.Parameter(torch.zeros(3))
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        res = fit(model, step, lambda epoch: [None], optimizer=opt, epochs=1,
                  out_dir=tmp_path / str(clip), grad_clip=clip, progress=False, device="cpu")
        assert torch.allclose(model.w.detach(), torch.tensor(expected), atol=1e-5)
    assert res["history"][0].get("train/grad_norm") is None
    # With clipping the logged norm is the pre-clip norm.
    log = json.loads((tmp_path / "1.0" / "log.jsonl").read_text().splitlines()[0])
    assert log["train/grad_norm"] == pytest.approx(500.0)


@pytest.mark.parametrize("mode,expected", [("max", 2), ("min", 1)])
def test_best_checkpoint_picks_right_epoch(tmp_path, mode, expected):
    values = [0.3, 0.7, 0.5]
    snapshots = {}

    def evaluate(model, state):
        snapshots[state.epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"score": values[state.epoch - 1]}

    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    res = fit(model, noisy_step, Points(), optimizer=opt, epochs=3, out_dir=tmp_path,
              evaluate=evaluate, batch_size=8, monitor="score", mode=mode, progress=False,
              device="cpu")
    assert res["best_epoch"] == expected
    assert res["best_metric"] == values[expected - 1]
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == expected
    for k, v in best["model"].items():
        assert torch.equal(v, snapshots[expected][k])
    with pytest.raises(KeyError, match="nope"):
        fit(tiny_model(), noisy_step, Points(), optimizer=torch.optim.SGD(model.parameters(), 0.1),
            epochs=1, out_dir=tmp_path / "x", batch_size=8, monitor="nope", progress=False,
            device="cpu")


def test_epoch_sampler_is_a_function_of_seed_and_epoch():
    s = EpochSampler(50, seed=3)
    s.set_epoch(2)
    a = list(s)
    s.set_epoch(5)
    b = list(s)
    s2 = EpochSampler(50, seed=3)
    s2.set_epoch(2)
    assert list(s2) == a and a != b and sorted(a) == list(range(50))
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def test_warmup_cosine_values():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, total_steps=10, warmup_steps=2, start_factor=0.0, final_factor=0.0)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.0) and lrs[1] == pytest.approx(0.5)
    assert lrs[2] == pytest.approx(1.0)
    assert lrs[6] == pytest.approx(0.5)  # half-way through the cosine
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0)


def test_ema_copies_frozen_parameters_exactly():
    from matsed_lite.training.engine import update_ema

    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    teacher = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    student[0].requires_grad_(False)
    before = teacher[1].weight.clone()
    update_ema(teacher, student, 0.9)
    assert torch.equal(teacher[0].weight, student[0].weight)  # frozen: copied bit for bit
    torch.testing.assert_close(teacher[1].weight, 0.9 * before + 0.1 * student[1].weight)
