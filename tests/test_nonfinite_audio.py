"""No silent wrong result from broken numbers: NaN/Inf audio, NaN losses, durations that lie."""
import numpy as np
import pytest
import soundfile as sf
import torch

from matsed_lite.cli import main
from matsed_lite.data.audio import AudioError, load_audio, nonfinite_samples, stream_audio
from matsed_lite.data.data_check import check_dataset
from matsed_lite.models.checkpoints import SHIPPED_CRNN
from matsed_lite.training.engine import NonFiniteLoss, fit, load_checkpoint

STRONG_HEADER = "filename\tonset\toffset\tevent_label\n"


def _nan_wav(path, n=16000, at=1234):
    x = np.zeros(n, np.float32)
    x[at] = np.nan
    x[at + 10] = np.inf
    sf.write(str(path), x, 16000, subtype="FLOAT")
    return path


def _folder(root, clips, strong_rows="", durations=None):
    (root / "metadata").mkdir(parents=True)
    (root / "audio" / "validation").mkdir(parents=True)
    for name, writer in clips.items():
        writer(root / "audio" / "validation" / name)
    (root / "metadata" / "validation.tsv").write_text(
        STRONG_HEADER + "".join(f"{n}\t\t\t\n" for n in clips) + strong_rows)
    if durations is not None:
        (root / "metadata" / "validation_durations.tsv").write_text(
            "filename\tduration\n" + "".join(f"{n}\t{d}\n" for n, d in durations.items()))
    return root


def test_load_and_stream_refuse_nonfinite_samples(tmp_path):
    bad = _nan_wav(tmp_path / "bad.wav")
    assert nonfinite_samples(bad) == 2
    with pytest.raises(AudioError, match="bad.wav: holds NaN or infinite samples .the first at sample 1234"):
        load_audio(bad, 16000)
    with pytest.raises(AudioError, match="bad.wav: holds NaN"):
        list(stream_audio(bad, 16000, 4000))
    good = tmp_path / "good.wav"
    sf.write(str(good), np.zeros(100, np.int16), 16000, subtype="PCM_16")
    assert nonfinite_samples(good) == 0


def test_data_check_reports_nonfinite_audio(tmp_path, capsys):
    ok = lambda p: sf.write(str(p), np.zeros(16000, np.float32), 16000)  # noqa: E731
    root = _folder(tmp_path / "d", {"bad.wav": _nan_wav, "ok.wav": ok})
    report = check_dataset(root)
    msgs = [str(p) for p in report.all_problems]
    assert any("bad.wav" in m and "2 NaN or infinite samples" in m for m in msgs), msgs
    assert main(["data", "check", str(root)]) == 1
    assert "NaN or infinite" in capsys.readouterr().out


def test_predict_names_the_nonfinite_file_and_writes_nothing(tmp_path, capsys):
    bad = _nan_wav(tmp_path / "bad.wav")
    out = tmp_path / "events.tsv"
    assert main(["predict", str(bad), "--run", str(SHIPPED_CRNN), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "bad.wav: holds NaN or infinite samples" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_durations_tsv_cannot_stretch_a_short_clip(tmp_path):
    short = lambda p: sf.write(str(p), np.zeros(8000, np.float32), 16000)  # noqa: E731  0.5 s
    root = _folder(tmp_path / "d", {"short.wav": short}, strong_rows="short.wav\t2.0\t9.0\tDog\n",
                   durations={"short.wav": 10.0})
    msgs = [str(p) for p in check_dataset(root).all_problems]
    assert any("duration 10 s is longer than the audio of short.wav (0.5 s)" in m for m in msgs), msgs
    assert any("offset 9 s is past the end of short.wav (0.5 s)" in m for m in msgs), msgs


def test_training_stops_on_a_nonfinite_loss(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = {"n": 0}

    def step(m, batch, state):
        calls["n"] += 1
        loss = ((m(batch) - 1) ** 2).mean()
        return (loss * float("nan") if state.epoch == 2 and calls["n"] > 4 else loss), {}

    batches = [torch.ones(2, 2)] * 3
    with pytest.raises(NonFiniteLoss, match=r"loss is nan at epoch 2, step 5 .*last.pt still holds epoch 1"):
        fit(model, step, lambda e: batches, optimizer=opt, epochs=3, out_dir=tmp_path,
            progress=False, device="cpu")
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in load_checkpoint(tmp_path / "last.pt")["model"].values())
