"""benchmarks/recorded_validation.py re-records a validation split: same clips, same labels,
other rooms and microphones. Checked: lengths and loudness kept, the band limit and the
reverberant tail are really there, one clip's conditions depend only on (seed, index), and
the folder it writes has the input's metadata and nothing half-made on bad input."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "recorded_validation.py"
SR = 16000


@pytest.fixture(scope="module")
def rec(load_benchmark):
    return load_benchmark("recorded_validation")


def band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return spec[(f >= lo) & (f < hi)].sum() / spec.sum()


def test_re_record_keeps_length_and_rms_and_cuts_the_top_band(rec):
    x = np.random.default_rng(0).standard_normal(10 * SR) * 0.05
    y = rec.re_record(x, SR, np.random.default_rng([0, 3]))
    assert y.shape == x.shape and y.dtype == np.float32
    assert abs(np.sqrt(np.mean(y.astype(float) ** 2)) / 0.05 - 1) < 0.05
    # white noise has 1/8 of its energy in 7-8 kHz; the low-pass (at most 7.5 kHz) removes most of it
    assert band_energy(x, 7000, 8000) > 0.1
    assert band_energy(y, 7500, 8000) < 0.02
    assert band_energy(y, 0, 60) < 0.002                # and the high-pass (80 Hz at least) the bottom


def test_the_room_adds_a_tail_after_an_impulse(rec):
    x = np.zeros(2 * SR)
    x[SR // 2] = 1.0
    y = rec.re_record(x, SR, np.random.default_rng([0, 1])).astype(float)
    after = y[SR // 2 + int(0.05 * SR): SR // 2 + int(0.15 * SR)]   # 50-150 ms after the click
    floor = y[: SR // 2 - 200]                                        # before it: noise floor only
    assert np.sqrt(np.mean(after ** 2)) > 10 * np.sqrt(np.mean(floor ** 2))


def test_conditions_depend_on_seed_and_index_only(rec):
    x = np.random.default_rng(1).standard_normal(SR)
    a = rec.re_record(x, SR, np.random.default_rng([0, 5]))
    b = rec.re_record(x, SR, np.random.default_rng([0, 5]))
    c = rec.re_record(x, SR, np.random.default_rng([0, 6]))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c, atol=1e-3)


def test_writes_the_validation_split_with_its_metadata(tmp_path):
    data = tmp_path / "lite"
    (data / "metadata").mkdir(parents=True)
    (data / "audio" / "validation").mkdir(parents=True)
    tsv = "filename\tonset\toffset\tevent_label\nv_0.wav\t1.000\t2.000\tDog\n"
    (data / "metadata" / "validation.tsv").write_text(tsv)
    (data / "metadata" / "validation_durations.tsv").write_text("filename\tduration\nv_0.wav\t3.000\n")
    sf.write(data / "audio" / "validation" / "v_0.wav", np.random.default_rng(2).standard_normal(3 * SR) * 0.1, SR)
    out = tmp_path / "recorded"
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(data), "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (out / "metadata" / "validation.tsv").read_text() == tsv
    y, sr = sf.read(out / "audio" / "validation" / "v_0.wav")
    assert sr == SR and len(y) == 3 * SR
    again = subprocess.run([sys.executable, str(SCRIPT), "--data", str(data), "--out", str(out)],
                           capture_output=True, text=True)
    assert again.returncode != 0 and "exists and is not empty" in again.stderr


def test_a_folder_without_validation_is_named(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert run.returncode != 0 and str(tmp_path) in run.stderr and "validation.tsv" in run.stderr
    assert not (tmp_path / "o").exists()


def test_a_stereo_clip_is_named_and_nothing_is_left_behind(tmp_path):
    data = tmp_path / "lite"
    (data / "metadata").mkdir(parents=True)
    (data / "audio" / "validation").mkdir(parents=True)
    (data / "metadata" / "validation.tsv").write_text("filename\tonset\toffset\tevent_label\n")
    (data / "metadata" / "validation_durations.tsv").write_text("filename\tduration\n")
    sf.write(data / "audio" / "validation" / "a.wav", np.zeros(SR), SR)
    sf.write(data / "audio" / "validation" / "b.wav", np.zeros((SR, 2)), SR)
    out = tmp_path / "recorded"
    run = subprocess.run([sys.executable, str(SCRIPT), "--data", str(data), "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "b.wav: expected a mono clip, got 2 channels" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lite"]   # no out, no .part
