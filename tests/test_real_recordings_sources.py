"""benchmarks/real_recordings.py splits its source recordings into a training side and a
validation side, or with --shared-sources gives both sides every recording. The Debian
packages are not downloaded here: a fake unpacked tree with the same paths stands in."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000


@pytest.fixture(scope="module")
def real(load_benchmark):
    return load_benchmark("real_recordings")


def write_tone(path: Path, freq: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(SR // 2) / SR
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), SR)


@pytest.fixture(scope="module")
def fake_root(real, tmp_path_factory):
    """Four files per class pattern (each a tone of its own pitch) and every background."""
    root = tmp_path_factory.mktemp("unpacked")
    freq = 200.0
    for cls, patterns in real.CLASSES.items():
        if "*" in patterns[0]:
            names = [patterns[0].replace("*", f"f{i}", 1) for i in range(4)]
        else:                                   # a list of named files: the first four
            names = patterns[:4]
        for name in names:
            if cls == "Keyboard_typing":        # a key's press (-0) and release (-1)
                write_tone(root / name.replace("-0.wav", "-1.wav"), freq + 50)
            write_tone(root / name, freq)
            freq += 100.0
    for p in real.BACKGROUNDS:
        write_tone(root / p, 60.0)
    return root


def fingerprints(side):
    """A sound's dominant frequency, as a set per class (keyboard: the press)."""
    out = {}
    for cls, sounds in side["events"].items():
        firsts = [s[0] if isinstance(s, tuple) else s for s in sounds]
        out[cls] = {round(np.argmax(np.abs(np.fft.rfft(x))) * 32000 / len(x) / 50) for x in firsts}
    return out


def test_default_sides_share_no_recording(real, fake_root):
    sides = real.load_sources(fake_root, seed=0)
    train, val = fingerprints(sides["train"]), fingerprints(sides["validation"])
    for cls in real.CLASSES:
        assert len(train[cls]) == 3 and len(val[cls]) == 1, cls   # a quarter for validation
        assert not train[cls] & val[cls], cls
    assert len(sides["train"]["backgrounds"]) + len(sides["validation"]["backgrounds"]) == len(real.BACKGROUNDS)


def test_shared_sources_give_both_sides_every_recording(real, fake_root):
    sides = real.load_sources(fake_root, seed=0, shared=True)
    train, val = fingerprints(sides["train"]), fingerprints(sides["validation"])
    for cls in real.CLASSES:
        assert len(train[cls]) == 4 and train[cls] == val[cls], cls
    assert len(sides["validation"]["backgrounds"]) == len(real.BACKGROUNDS)


def test_a_class_without_files_is_named(real, tmp_path):
    with pytest.raises(SystemExit, match="class Speech_prompt: found no files"):
        real.load_sources(tmp_path, seed=0, shared=True)


def test_left_out_sounds_are_counted_and_an_empty_class_is_named(real, tmp_path, capsys):
    long_, short = tmp_path / "long.wav", tmp_path / "short.wav"
    write_tone(long_, 300.0)
    sf.write(short, 0.3 * np.sin(2 * np.pi * 300.0 * np.arange(SR // 20) / SR), SR)  # 50 ms
    assert len(real.read_events("Speech", [str(long_), str(short)])) == 1
    assert "class Speech: left out 1 of 2 files shorter than 0.1 s" in capsys.readouterr().out
    press = tmp_path / "k-0.wav"
    write_tone(press, 400.0)                     # its release k-1.wav is missing
    with pytest.raises(SystemExit, match=r"class Keyboard_typing: none of its 1 files is usable "
                                         r"\(without a release file"):
        real.read_events("Keyboard_typing", [str(press)])
