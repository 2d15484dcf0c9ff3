"""benchmarks/plain_crnn.py, the race's reference CRNN, reads audio and labels on its own
(no package data code), so its reading is checked here: rates, channels, lengths, frame
labels, both folder layouts, and a short end-to-end run."""
import json
import sys

import numpy as np
import pytest
import soundfile as sf
import torch



@pytest.fixture(scope="module")
def plain(load_benchmark):
    return load_benchmark("plain_crnn")


def test_load_wave_makes_16k_mono_10s_from_8k_stereo_short_flac(plain, tmp_path):
    t = np.arange(4 * 8000) / 8000
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "a.flac", np.stack([left, np.zeros_like(left)], 1), 8000)
    x = plain.load_wave(tmp_path / "a.flac")
    assert x.shape == (160000,) and x.dtype == np.float32
    assert np.all(x[4 * 16000 + 100:] == 0)                     # padded after 4 s
    # the channel mean halves the amplitude; resampling keeps the tone
    assert abs(np.abs(x[1000:60000]).max() - 0.25) < 0.01
    spectrum = np.abs(np.fft.rfft(x[:64000]))
    assert abs(np.argmax(spectrum) * 16000 / 64000 - 440) < 2


def test_strong_targets_cover_the_event_frames(plain):
    rows = {"a.wav": [{"onset": "0.10", "offset": "0.30", "event_label": "b"},
                      {"onset": "9.90", "offset": "10.0", "event_label": "a"}],
            "empty.wav": [{"onset": "", "offset": "", "event_label": ""}]}
    y = plain.strong_targets(["a.wav", "empty.wav"], rows, ["a", "b"])
    assert y.shape == (2, 250, 2)
    assert torch.nonzero(y[0, :, 1]).flatten().tolist() == list(range(2, 8))  # 0.08-0.32 s
    assert torch.nonzero(y[0, :, 0]).flatten().tolist() == [247, 248, 249]
    assert y[1].sum() == 0


def test_locate_names_the_folder_and_the_candidates(plain, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"none of weak\.tsv, train/weak\.tsv"):
        plain.locate(tmp_path, "weak.tsv", "train/weak.tsv")


def test_a_short_run_on_desed_lite_writes_its_result(plain, tmp_path, monkeypatch):
    from matsed_lite.data.desed_lite import generate_desed_lite
    root = tmp_path / "data"
    generate_desed_lite(root, preset="smoke", seed=0, splits=["synth_train", "weak", "validation"], progress=False)
    out = tmp_path / "result.json"
    monkeypatch.setattr(sys, "argv", ["plain_crnn.py", "--data", str(root), "--minutes", "0.02",
                                      "--eval-minutes", "1", "--out", str(out)])
    plain.main()
    r = json.loads(out.read_text())
    assert r["steps"] >= 1 and len(r["history"]) == 1
    assert len(r["classes"]) >= 2 and r["classes"] == sorted(r["classes"])
    assert set(r["last"]["median"]["per_class_psds1"]) == set(r["classes"])
    assert 0.0 <= r["last"]["median"]["psds1"] <= 1.0
