"""data_check.py: one test per kind of problem, skip_missing, and a clean data set."""
import numpy as np
import pytest
import soundfile as sf

from matsed_lite.data import desed_format as fmt
from matsed_lite.data.data_check import check_dataset, check_split, format_report
from matsed_lite.data.datasets import SplitSpec
from matsed_lite.data.desed_format import Event

SR = 8000  # small files; the check only reads headers
CLASSES = ["Cat", "Dog", "Speech"]


def wav(path, seconds, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(round(seconds * sr)), 0.1, np.float32), sr)


def strong_split(tmp_path, tsv_text, clips=None, durations=None, name="s"):
    """A strong split from raw TSV text; ``clips``: {file: seconds} to write."""
    audio = tmp_path / "audio" / name
    audio.mkdir(parents=True, exist_ok=True)
    for f, secs in (clips or {}).items():
        wav(audio / f, secs)
    tsv = tmp_path / f"{name}.tsv"
    tsv.write_text(tsv_text)
    dur = None
    if durations is not None:
        dur = tmp_path / f"{name}_durations.tsv"
        fmt.write_durations(dur, durations)
    return SplitSpec(name, "strong", audio, tsv, dur)


HEAD = "filename\tonset\toffset\tevent_label\n"


def one_problem(report):
    assert not report.ok
    assert len(report.problems) == 1, report.problems
    return report.problems[0]


def test_missing_audio_file_names_the_row_and_skip_missing_counts_it(tmp_path):
    spec = strong_split(tmp_path, HEAD + "a.wav\t0.0\t1.0\tDog\n"
                                         "b.wav\t0.5\t1.0\tCat\n"
                                         "a.wav\t1.0\t1.5\tCat\n", {"a.wav": 2.0})
    p = one_problem(check_split(spec))
    assert p.path == str(spec.tsv) and p.row == 3
    assert "not found" in p.message and "b.wav" in p.message
    assert str(p).startswith(f"{spec.tsv}, row 3: audio file not found")

    rep = check_split(spec, skip_missing=True)
    assert rep.ok and rep.missing == 1 and rep.missing_files == ["b.wav"]
    assert rep.clips == 1 and rep.listed == 2
    assert rep.class_counts == {"Cat": 1, "Dog": 1}  # b.wav's event is not counted
    assert "1 missing audio file(s) skipped" in format_report(rep)


def test_onset_not_before_offset(tmp_path):
    spec = strong_split(tmp_path, HEAD + "a.wav\t1.0\t1.0\tDog\n", {"a.wav": 2.0})
    p = one_problem(check_split(spec))
    assert p.row == 2 and "onset 1 is not before offset 1" in p.message


def test_negative_time(tmp_path):
    spec = strong_split(tmp_path, HEAD + "a.wav\t-0.5\t1.0\tDog\n", {"a.wav": 2.0})
    p = one_problem(check_split(spec))
    assert p.row == 2 and "negative" in p.message


def test_offset_past_the_audio_length(tmp_path):
    spec = strong_split(tmp_path, HEAD + "a.wav\t0.0\t1.0\tDog\n"
                                         "a.wav\t1.0\t2.5\tCat\n", {"a.wav": 2.0})
    p = one_problem(check_split(spec))
    assert p.row == 3 and "past the end of a.wav (2 s)" in p.message


def test_offset_past_the_durations_tsv(tmp_path):
    # The durations TSV wins over the file's own length where it lists the clip.
    spec = strong_split(tmp_path, HEAD + "a.wav\t0.0\t1.8\tDog\n", {"a.wav": 2.0},
                        durations={"a.wav": 1.5})
    p = one_problem(check_split(spec))
    assert p.row == 2 and "past the end of a.wav (1.5 s)" in p.message


def test_label_outside_the_class_list(tmp_path):
    spec = strong_split(tmp_path, HEAD + "a.wav\t0.0\t1.0\tCow\n", {"a.wav": 2.0})
    assert check_split(spec).ok  # no class list: any label goes
    p = one_problem(check_split(spec, classes=CLASSES))
    assert p.row == 2 and "'Cow' is not in the class list" in p.message


def test_malformed_row(tmp_path):
    spec = strong_split(tmp_path, HEAD + "a.wav\t0.0\t1.0\tDog\n"
                                         "a.wav\t0.5\tDog\n", {"a.wav": 2.0})
    p = one_problem(check_split(spec))
    assert p.row == 3 and "expected 4 tab-separated fields" in p.message


def test_bad_header(tmp_path):
    spec = strong_split(tmp_path, "file\tstart\tend\tlabel\na.wav\t0\t1\tDog\n", {"a.wav": 2.0})
    rep = check_split(spec)
    assert not rep.ok and rep.problems[0].row == 1 and "header" in rep.problems[0].message


def test_unreadable_audio_names_the_file(tmp_path):
    spec = strong_split(tmp_path, HEAD + "a.wav\t0.0\t1.0\tDog\n"
                                         "bad.wav\t0.0\t1.0\tCat\n", {"a.wav": 2.0})
    (spec.audio_dir / "bad.wav").write_bytes(b"not a wav file at all" * 10)
    p = one_problem(check_split(spec, skip_missing=True))  # present, so never skipped
    assert p.path == str(spec.audio_dir / "bad.wav")
    assert "corrupt" in p.message and f"{spec.tsv}, row 3" in p.message


def test_empty_splits(tmp_path):
    spec = strong_split(tmp_path, HEAD)
    p = one_problem(check_split(spec))
    assert "no clips" in p.message and spec.name in p.message

    folder = tmp_path / "unl"
    folder.mkdir()
    p = one_problem(check_split(SplitSpec("unlabeled", "unlabeled", folder)))
    assert "no clips" in p.message and str(folder) in p.message

    spec = strong_split(tmp_path, HEAD + "gone.wav\t0\t1\tDog\n", name="all_missing")
    p = one_problem(check_split(spec, skip_missing=True))
    assert "all 1 listed audio files are missing" in p.message


def test_missing_tsv_and_audio_folder(tmp_path):
    rep = check_split(SplitSpec("w", "weak", tmp_path / "nowhere", tmp_path / "w.tsv"))
    msgs = [str(p) for p in rep.problems]
    assert any("audio folder" in m and "nowhere" in m for m in msgs)
    assert any(m.startswith(str(tmp_path / "w.tsv")) and "file not found" in m for m in msgs)


def make_clean_dataset(root):
    """A small DESED-lite style tree with known counts."""
    meta = root / "metadata"
    for f, s in [("s1.wav", 10.0), ("s2.wav", 10.0), ("s3.wav", 10.0)]:
        wav(root / "audio" / "synth_train" / f, s)
    fmt.write_strong(meta / "synth_train.tsv",
                     [Event("s1.wav", 0.0, 1.0, "Dog"), Event("s1.wav", 2.0, 3.0, "Dog"),
                      Event("s2.wav", 0.5, 9.9, "Speech")], empty_files=["s3.wav"])
    for f in ("w1.wav", "w2.wav"):
        wav(root / "audio" / "weak" / f, 10.0)
    fmt.write_weak(meta / "weak.tsv", {"w1.wav": ["Cat", "Dog"], "w2.wav": ["Cat"]})
    for f in ("u1.wav", "u2.wav"):
        wav(root / "audio" / "unlabeled" / f, 10.0)
    fmt.write_unlabeled(meta / "unlabeled.tsv", ["u1.wav", "u2.wav"])
    wav(root / "audio" / "validation" / "v1.wav", 7.2)
    fmt.write_strong(meta / "validation.tsv", [Event("v1.wav", 6.0, 7.2, "Cat")])
    fmt.write_durations(meta / "validation_durations.tsv", {"v1.wav": 7.2})


def test_clean_dataset_is_ok_with_counts_and_hours(tmp_path):
    make_clean_dataset(tmp_path)
    rep = check_dataset(tmp_path, classes=CLASSES)
    assert rep.ok, format_report(rep)
    s = rep.splits
    assert list(s) == ["synth_train", "weak", "unlabeled", "validation"]
    assert s["synth_train"].clips == 3  # the clip without events counts
    assert s["synth_train"].class_counts == {"Dog": 2, "Speech": 1}
    assert s["weak"].class_counts == {"Cat": 2, "Dog": 1}
    assert s["unlabeled"].clips == 2 and s["unlabeled"].class_counts == {}
    assert s["synth_train"].hours == pytest.approx(30 / 3600)
    assert s["validation"].hours == pytest.approx(7.2 / 3600)
    assert s["weak"].sample_rates == {SR: 2}

    text = format_report(rep)
    assert "OK: no problems found." in text
    for word in ("synth_train", "validation", "Speech", "8 kHz", "0.008"):
        assert word in text


def test_report_lists_every_problem_with_path_and_row(tmp_path):
    make_clean_dataset(tmp_path)
    with open(tmp_path / "metadata" / "weak.tsv", "a") as f:
        f.write("w3.wav\tCat\n")  # row 4, no audio
    with open(tmp_path / "metadata" / "synth_train.tsv", "a") as f:
        f.write("s1.wav\t5\t4\tDog\n")  # row 6
    rep = check_dataset(tmp_path)
    assert not rep.ok and len(rep.all_problems) == 2
    text = format_report(rep)
    assert f"{tmp_path / 'metadata' / 'weak.tsv'}, row 4: audio file not found" in text
    assert f"{tmp_path / 'metadata' / 'synth_train.tsv'}, row 6: onset 5 is not before offset 4" in text
    assert "FAILED: 2 problem(s) found." in text
    assert check_dataset(tmp_path, skip_missing=True).splits["weak"].missing == 1


def test_unlabeled_folder_listing_and_not_a_dataset(tmp_path):
    folder = tmp_path / "u"
    wav(folder / "b.wav", 1.0)
    wav(folder / "a.flac", 1.0)
    (folder / "notes.txt").write_text("not audio")
    rep = check_split(SplitSpec("unlabeled", "unlabeled", folder))
    assert rep.ok and rep.clips == 2 and rep.listed == 2

    rep = check_dataset(tmp_path / "empty_root")
    assert not rep.ok and "looked for" in rep.problems[0].message
    assert "FAILED" in format_report(rep)
