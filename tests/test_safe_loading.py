"""Loading a model or checkpoint never runs code: every torch.load is weights_only."""
import os

import pytest
import torch

from matsed_lite.cli import main
from matsed_lite.files import CheckpointError, load_torch_file
from matsed_lite.models.checkpoints import SHIPPED_FILES, load_model
from matsed_lite.models.frame_cache import FrameCache
from matsed_lite.models.passt_lite import WEIGHTS_DIR
from matsed_lite.training.engine import fit, load_checkpoint
from matsed_lite.training.reconstruction_pretraining import load_context


class _Payload:
    """Unpickling this would create the marker file (a stand-in for any shell command)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "MARKER_CODE_RAN"
    payload = {"kind": "matsed", "preset": "smoke", "classes": ["Dog"], "model": _Payload(marker),
               "epoch": 1}
    for name in ("model.pt", "last.pt", "context.pt", "cache.pt"):
        torch.save(payload, tmp_path / name)
    return tmp_path, marker


def test_library_loaders_refuse_a_pickle_payload(evil):
    folder, marker = evil
    for load in (lambda: load_model(folder / "model.pt"),
                 lambda: load_checkpoint(folder / "last.pt"),
                 lambda: load_context(folder / "context.pt", "smoke"),
                 lambda: FrameCache.load(folder / "cache.pt"),
                 lambda: load_torch_file(folder / "model.pt")):
        with pytest.raises(CheckpointError, match="refused to load.*could run code"):
            load()
    assert not marker.exists()


def test_evaluate_predict_and_finetune_init_refuse_it(evil, tmp_path, capsys):
    folder, marker = evil
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "a.wav"
    sf.write(str(wav), np.zeros(1600, np.float32), 16000)
    commands = [
        ["evaluate", "--run", str(folder / "model.pt"), "--data", str(tmp_path), "--json",
         str(tmp_path / "r.json")],
        ["evaluate", "--run", str(folder), "--data", str(tmp_path), "--json", str(tmp_path / "r.json")],
        ["predict", str(wav), "--run", str(folder / "model.pt"), "--out", str(tmp_path / "e.tsv")],
        ["finetune", "--stage", "2", "--init", str(folder), "--data", str(tmp_path),
         "--preset", "smoke", "--out", str(tmp_path / "s2")],
    ]
    for argv in commands:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "refused to load" in err and "model.pt" in err, err
    assert not marker.exists()
    assert not (tmp_path / "e.tsv").exists()


def test_resume_refuses_a_payload_in_last_pt(evil):
    folder, marker = evil
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.ones(1, 2), torch.zeros(1, 1))]
    with pytest.raises(CheckpointError, match="last.pt: refused to load"):
        fit(model, lambda m, b, s: (((m(b[0]) - b[1]) ** 2).mean(), {}), lambda e: data,
            optimizer=opt, epochs=1, out_dir=folder, resume=True, progress=False, device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", os.urandom(3000)], ids=["empty", "random"])
def test_broken_or_foreign_files_name_the_file(tmp_path, content, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match="model.pt"):
        load_model(bad)
    import numpy as np
    import soundfile as sf
    sf.write(str(tmp_path / "a.wav"), np.zeros(1600, np.float32), 16000)
    assert main(["predict", str(tmp_path / "a.wav"), "--run", str(bad),
                 "--out", str(tmp_path / "e.tsv")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err, err
    torch.save({"something": torch.ones(2)}, bad)  # a torch file, not a model
    with pytest.raises(CheckpointError, match="not a matsed-lite model.pt .no kind"):
        load_model(bad)


def test_truncated_checkpoint_is_named(tmp_path):
    torch.save({"model": {"w": torch.ones(1000)}, "epoch": 1}, tmp_path / "ok.pt")
    blob = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(tmp_path / "last.pt")


def test_shipped_weights_load_weights_only():
    for model_file, _ in SHIPPED_FILES.values():
        ck = torch.load(model_file, map_location="cpu", weights_only=True)
        assert {"kind", "preset", "classes", "model"} <= set(ck)
    torch.load(WEIGHTS_DIR / "passt_lite.pt", map_location="cpu", weights_only=True)


def test_engine_checkpoints_load_weights_only(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.2), torch.nn.Linear(4, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    data = [(torch.randn(4, 3), torch.randn(4, 1)) for _ in range(3)]
    fit(model, lambda m, b, s: (((m(b[0]) - b[1]) ** 2).mean(), {}), lambda e: data,
        optimizer=opt, scheduler=sched, epochs=1, out_dir=tmp_path, ema_max_alpha=0.9,
        progress=False, device="cpu", extra={"note": [1, 2.5, "x"]})
    for name in ("last.pt", "best.pt"):
        ck = torch.load(tmp_path / name, map_location="cpu", weights_only=True)
        assert ck["epoch"] == 1
    assert isinstance(torch.load(tmp_path / "last.pt", weights_only=True)["rng"]["python"], dict)
