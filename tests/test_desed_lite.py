"""DESED-lite generation: layout, labels, SNRs, determinism, resuming, workers."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from matsed_lite.data import desed_format
from matsed_lite.data.desed_lite import (
    MANIFEST_NAME,
    SNR_DB,
    SPLITS,
    SplitDef,
    active_rms,
    clip_spec,
    generate_desed_lite,
    render_clip,
    split_count,
)
from matsed_lite.data.event_sounds import MIN_EVENT_SECONDS
from matsed_lite.data.synth_folder import GENERATOR_VERSION
from matsed_lite.presets import DESED_CLASSES, get_preset

# Few clips, but enough validation clips that a short one is likely (checked below).
PRESET = get_preset("smoke", n_synth_train=6, n_weak=4, n_unlabeled=4, n_validation=8)
COURSE_SPLITS = [s for s in SPLITS if s.in_course]
SPLIT_NAMES = [s.name for s in COURSE_SPLITS]


def _files(root: Path) -> dict:
    """Relative path -> bytes of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("desed_lite") / "data"
    summary = generate_desed_lite(root, PRESET, seed=3, progress=False)
    return root, summary


def test_layout_headers_and_manifest(data):
    root, _ = data
    meta = root / "metadata"
    headers = {"strong": desed_format.STRONG_HEADER, "weak": desed_format.WEAK_HEADER,
               "unlabeled": desed_format.UNLABELED_HEADER}
    for split in COURSE_SPLITS:
        assert (root / "audio" / split.name).is_dir()
        first = (meta / f"{split.name}.tsv").read_text().splitlines()[0].split("\t")
        assert tuple(first) == headers[split.kind]
        first = (meta / f"{split.name}_durations.tsv").read_text().splitlines()[0].split("\t")
        assert tuple(first) == desed_format.DURATIONS_HEADER
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    assert manifest["preset"] == "smoke" and manifest["seed"] == 3
    assert manifest["version"] == GENERATOR_VERSION
    assert manifest["classes"] == list(DESED_CLASSES)
    assert manifest["sample_rate"] == PRESET.sample_rate
    assert set(manifest["splits"]) == set(SPLIT_NAMES)


def test_counts_per_split_and_summary(data):
    root, summary = data
    meta = root / "metadata"
    sizes = PRESET.split_sizes()
    for split in COURSE_SPLITS:
        n = sizes[split.name]
        wavs = sorted(p.name for p in (root / "audio" / split.name).iterdir())
        assert wavs == [f"{split.name}_{i:05d}.wav" for i in range(n)]
        durations = desed_format.read_durations(meta / f"{split.name}_durations.tsv")
        assert sorted(durations) == wavs
        if split.kind == "strong":
            assert sorted(desed_format.read_strong(meta / f"{split.name}.tsv").filenames) == wavs
        elif split.kind == "weak":
            assert sorted(desed_format.read_weak(meta / f"{split.name}.tsv")) == wavs
        else:
            assert desed_format.read_unlabeled(meta / f"{split.name}.tsv") == wavs
        s = summary[split.name]
        assert s["clips"] == n and s["skipped"] == 0
        assert s["seconds"] == pytest.approx(sum(durations.values()), abs=1e-6)
        assert s["events"] >= n  # at least one event per clip


def test_wav_format_matches_durations(data):
    root, _ = data
    for split in COURSE_SPLITS:
        durations = desed_format.read_durations(root / "metadata" / f"{split.name}_durations.tsv")
        for name, dur in durations.items():
            info = sf.info(str(root / "audio" / split.name / name))
            assert info.samplerate == PRESET.sample_rate and info.channels == 1
            assert info.subtype == "PCM_16"
            assert info.frames == round(dur * PRESET.sample_rate)


def test_events_lie_inside_their_clips(data):
    root, _ = data
    meta = root / "metadata"
    for name in ("synth_train", "validation"):
        durations = desed_format.read_durations(meta / f"{name}_durations.tsv")
        # read_strong checks offsets against durations and labels against the classes
        labels = desed_format.read_strong(meta / f"{name}.tsv", DESED_CLASSES, durations)
        for ev in labels.events:
            assert ev.offset <= durations[ev.filename] + 1e-9
            assert ev.offset - ev.onset >= MIN_EVENT_SECONDS - 1e-9


def test_tsv_labels_equal_specs_made_without_audio(data):
    root, _ = data
    meta = root / "metadata"
    strong = desed_format.read_strong(meta / "synth_train.tsv").events_by_file()
    for i in range(PRESET.n_synth_train):
        spec = clip_spec("synth_train", i, PRESET, seed=3)
        got = sorted((e.onset, e.offset, e.label) for e in strong[spec.filename])
        assert got == sorted((e.onset, e.offset, e.label) for e in spec.events)
    weak = desed_format.read_weak(meta / "weak.tsv")
    for i in range(PRESET.n_weak):
        spec = clip_spec("weak", i, PRESET, seed=3)
        assert weak[spec.filename] == tuple(sorted({e.label for e in spec.events}))


def test_wav_is_the_rendered_mix_and_events_fill_their_labels(data):
    root, _ = data
    sr = PRESET.sample_rate
    spec = clip_spec("synth_train", 0, PRESET, seed=3)
    parts = render_clip(spec, sr, return_parts=True)
    audio, _ = sf.read(str(root / "audio" / "synth_train" / spec.filename), dtype="int16")
    np.testing.assert_array_equal(audio, np.rint(parts.mix * 32767).astype(np.int16))
    total = parts.background.copy()
    for (start, x), ev in zip(parts.events, spec.events):
        # the event's audio spans exactly [onset, offset] and is audible at both ends
        assert start == round(ev.onset * sr) and start + len(x) == round(ev.offset * sr)
        hop = sr // 50
        edge = np.abs(x[:hop]).max(), np.abs(x[-hop:]).max()
        assert min(edge) > 0.01 * np.abs(x).max()
        total[start:start + len(x)] += x
    np.testing.assert_allclose(total, parts.mix, atol=1e-6)
    assert np.abs(parts.mix).max() <= 0.9 + 1e-6  # normalised: no clipping


def test_snrs_are_drawn_in_range_and_rendered_as_specified():
    snrs = [e.snr_db for i in range(300) for e in clip_spec("synth_train", i, PRESET, seed=0).events]
    assert min(snrs) >= SNR_DB[0] and max(snrs) <= SNR_DB[1]
    assert min(snrs) < SNR_DB[0] + 2 and max(snrs) > SNR_DB[1] - 2  # the whole range is used
    sr = PRESET.sample_rate
    checked = 0
    for i in range(4):
        spec = clip_spec("validation", i, PRESET, seed=0)  # regenerate the spec, then render
        parts = render_clip(spec, sr, return_parts=True)
        for (start, x), ev in zip(parts.events, spec.events):
            bg = parts.background[start:start + len(x)].astype(np.float64)
            measured = 20 * np.log10(active_rms(x, sr) / np.sqrt(np.mean(bg ** 2)))
            assert measured == pytest.approx(ev.snr_db, abs=0.05)
            checked += 1
    assert checked >= 4


def test_clips_have_several_events_sometimes_overlapping_and_repeated():
    specs = [clip_spec("synth_train", i, PRESET, seed=0) for i in range(400)]
    counts = [len(s.events) for s in specs]
    assert min(counts) == 1 and max(counts) >= 4
    overlap = repeat = 0
    for s in specs:
        ev = sorted(s.events, key=lambda e: e.onset)
        overlap += any(b.onset < a.offset for a, b in zip(ev, ev[1:]))
        repeat += len({e.label for e in ev}) < len(ev)
    assert overlap > 40 and repeat > 10
    seen = {e.label for s in specs for e in s.events}
    assert seen == set(DESED_CLASSES)


def test_validation_has_a_realistic_share_of_shorter_clips():
    paper = get_preset("paper")
    n = split_count("validation", paper)
    specs = [clip_spec("validation", i, paper, seed=0) for i in range(n)]
    short = [s for s in specs if s.duration < paper.clip_seconds]
    assert 0.06 * n < len(short) < 0.12 * n  # real DESED: about 9%
    assert all(3.0 <= s.duration <= 9.5 for s in short)
    assert all(e.offset <= s.duration for s in short for e in s.events)
    train = [clip_spec("synth_train", i, paper, seed=0) for i in range(300)]
    assert all(s.duration == paper.clip_seconds for s in train)


def test_shorter_validation_clip_is_written_short(tmp_path):
    # find a short validation clip index quickly from specs, then generate up to it
    idx = next(i for i in range(200) if clip_spec("validation", i, PRESET, seed=0).duration < 10)
    preset = get_preset(PRESET, n_validation=idx + 1)
    generate_desed_lite(tmp_path, preset, seed=0, splits=["validation"], progress=False)
    spec = clip_spec("validation", idx, preset, seed=0)
    durations = desed_format.read_durations(tmp_path / "metadata" / "validation_durations.tsv")
    assert durations[spec.filename] == pytest.approx(spec.duration) and spec.duration < 10
    assert sf.info(str(tmp_path / "audio" / "validation" / spec.filename)).duration == pytest.approx(spec.duration)


def test_same_seed_gives_byte_identical_files(data, tmp_path):
    root, _ = data
    generate_desed_lite(tmp_path / "again", PRESET, seed=3, progress=False)
    assert _files(tmp_path / "again") == _files(root)


def test_other_seed_gives_other_data(tmp_path):
    small = get_preset(PRESET, n_synth_train=2)
    generate_desed_lite(tmp_path / "a", small, seed=0, splits=["synth_train"], progress=False)
    generate_desed_lite(tmp_path / "b", small, seed=1, splits=["synth_train"], progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a["audio/synth_train/synth_train_00000.wav"] != b["audio/synth_train/synth_train_00000.wav"]
    assert a["metadata/synth_train.tsv"] != b["metadata/synth_train.tsv"]


def test_clip_does_not_depend_on_split_size_or_other_splits(tmp_path):
    # each clip has its own seed: growing a split keeps the clips already made
    generate_desed_lite(tmp_path / "a", get_preset(PRESET, n_weak=2), seed=5, splits=["weak"], progress=False)
    generate_desed_lite(tmp_path / "b", get_preset(PRESET, n_weak=3), seed=5, progress=False)
    for i in range(2):
        rel = f"audio/weak/weak_{i:05d}.wav"
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_rerun_skips_everything_and_changes_nothing(data):
    root, _ = data
    before = _files(root)
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.wav")}
    summary = generate_desed_lite(root, PRESET, seed=3, progress=False)
    for name, s in summary.items():
        assert s["skipped"] == s["clips"] and s["seconds"] == 0, (name, s)
    assert _files(root) == before
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())


def test_partial_or_broken_files_are_regenerated(data, tmp_path):
    root, _ = data
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    folder = copy / "audio" / "synth_train"
    truncated, garbage = folder / "synth_train_00001.wav", folder / "synth_train_00004.wav"
    os.truncate(truncated, truncated.stat().st_size // 2)  # e.g. an interrupted copy
    garbage.write_bytes(b"not a wav")
    (folder / "synth_train_00002.wav").unlink()
    leftover = folder / ".synth_train_00003.wav.12345.part"  # an interrupted write
    leftover.write_bytes(b"RIFF partial")
    summary = generate_desed_lite(copy, PRESET, seed=3, splits=["synth_train"], progress=False)
    assert summary["synth_train"]["skipped"] == PRESET.n_synth_train - 3
    assert summary["synth_train"]["seconds"] == pytest.approx(3 * PRESET.clip_seconds)
    assert not leftover.exists()
    assert _files(copy) == _files(root)


def test_two_workers_give_the_same_files_as_one(data, tmp_path):
    root, _ = data
    generate_desed_lite(tmp_path, PRESET, seed=3, splits=["synth_train", "validation"], workers=2,
                        progress=False)
    mine = _files(tmp_path)
    ref = _files(root)
    for rel, blob in mine.items():
        if rel != MANIFEST_NAME:  # the manifest lists only the splits made
            assert blob == ref[rel], rel
    assert len([r for r in mine if r.endswith(".wav")]) == PRESET.n_synth_train + PRESET.n_validation


def test_other_preset_or_seed_in_the_same_folder_is_refused(data):
    root, _ = data
    with pytest.raises(ValueError, match=MANIFEST_NAME) as err:
        generate_desed_lite(root, PRESET, seed=4, progress=False)
    assert "seed" in str(err.value)
    with pytest.raises(ValueError, match=MANIFEST_NAME) as err:
        generate_desed_lite(root, "cpu", seed=3, progress=False)
    assert "preset" in str(err.value)
    with pytest.raises(ValueError, match=MANIFEST_NAME):
        generate_desed_lite(root, get_preset(PRESET, sample_rate=8000), seed=3, progress=False)


def test_split_subset_and_unknown_split(tmp_path):
    summary = generate_desed_lite(tmp_path, get_preset(PRESET, n_weak=2), splits=["weak"], progress=False)
    assert list(summary) == ["weak"]
    assert sorted(p.name for p in (tmp_path / "metadata").iterdir()) == ["weak.tsv", "weak_durations.tsv"]
    assert not (tmp_path / "audio" / "synth_train").exists()
    with pytest.raises(ValueError, match="strong_eval"):
        generate_desed_lite(tmp_path, PRESET, splits=["strong_eval"], progress=False)


def test_a_new_split_is_one_table_row(tmp_path):
    tagging = SplitDef("tagging", "weak", 2, seed_offset=4)
    summary = generate_desed_lite(tmp_path, PRESET, splits=[tagging], progress=False)
    assert summary["tagging"]["clips"] == 2
    labels = desed_format.read_weak(tmp_path / "metadata" / "tagging.tsv", DESED_CLASSES)
    assert sorted(labels) == ["tagging_00000.wav", "tagging_00001.wav"]
    # its own seed offset: not a copy of the weak split's clips
    weak = clip_spec("weak", 0, PRESET, seed=0)
    assert clip_spec(tagging, 0, PRESET, seed=0).events != weak.events


def test_tagging_corpus_is_separate_and_made_only_on_request(tmp_path):
    preset = get_preset("smoke", n_tagging=4, n_tagging_eval=2)
    assert {s.name for s in SPLITS if not s.in_course} == {"tagging", "tagging_eval"}
    summary = generate_desed_lite(tmp_path, preset, splits=["tagging", "tagging_eval"], progress=False)
    assert {k: v["clips"] for k, v in summary.items()} == {"tagging": 4, "tagging_eval": 2}
    labels = desed_format.read_weak(tmp_path / "metadata" / "tagging.tsv")
    assert len(labels) == 4 and all(labels.values())
    # Its own seed: not a copy of the course's weak split.
    a = sf.read(tmp_path / "audio" / "tagging" / "tagging_00000.wav")[0]
    b = render_clip(clip_spec("weak", 0, preset), preset.sample_rate)
    assert a.shape != b.shape or not np.allclose(a, b, atol=1e-3)
