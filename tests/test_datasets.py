"""datasets.py: layouts, class inference and the torch Datasets' items."""
import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from matsed_lite.data import desed_format as fmt
from matsed_lite.data.datasets import StrongDataset, UnlabeledDataset, WeakDataset, make_datasets
from matsed_lite.data.layout import (SplitSpec, desed_lite_layout, infer_classes, layout_for,
                                     real_desed_layout)
from matsed_lite.data.desed_format import DataError, Event
from matsed_lite.presets import get_preset

P = get_preset("smoke")  # 16 kHz, 10 s, hop 320 -> 500 frames of 20 ms
CLASSES = ["Cat", "Dog", "Speech"]


def wav(path, seconds, sr=16000, value=0.1):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.full(int(round(seconds * sr)), value, np.float32), sr, subtype="FLOAT")


@pytest.fixture
def lite(tmp_path):
    """A DESED-lite tree: strong (one clip 3.7 s, one without events), weak, unlabeled."""
    root, meta = tmp_path / "lite", tmp_path / "lite" / "metadata"
    wav(root / "audio" / "synth_train" / "s1.wav", 10.0)
    wav(root / "audio" / "synth_train" / "s2.wav", 3.7)
    wav(root / "audio" / "synth_train" / "s3.wav", 10.0)
    fmt.write_strong(meta / "synth_train.tsv",
                     [Event("s1.wav", 1.0, 2.5, "Dog"), Event("s1.wav", 2.0, 4.01, "Speech"),
                      Event("s2.wav", 3.0, 3.7, "Cat")], empty_files=["s3.wav"])
    wav(root / "audio" / "weak" / "w1.wav", 10.0)
    fmt.write_weak(meta / "weak.tsv", {"w1.wav": ["Cat", "Speech"]})
    wav(root / "audio" / "unlabeled" / "u1.wav", 10.0, sr=44100)
    fmt.write_unlabeled(meta / "unlabeled.tsv", ["u1.wav"])
    wav(root / "audio" / "validation" / "v1.wav", 10.0)
    fmt.write_strong(meta / "validation.tsv", [Event("v1.wav", 0.0, 10.0, "Dog")])
    return root


def test_items_shapes_dtypes_and_frame_labels(lite):
    layout = layout_for(lite)
    assert layout == desed_lite_layout(lite)
    ds = StrongDataset(layout["synth_train"], P, CLASSES)
    assert len(ds) == 3 and ds.filenames == ["s1.wav", "s2.wav", "s3.wav"]
    item = ds[0]
    assert item["waveform"].dtype == torch.float32 and item["waveform"].shape == (P.clip_samples,)
    assert item["frame_mask"].dtype == torch.bool and item["frame_mask"].shape == (500,)
    assert item["strong"].dtype == torch.float32 and item["strong"].shape == (500, 3)
    assert item["weak"].dtype == torch.float32 and item["weak"].tolist() == [0.0, 1.0, 1.0]
    assert item["has_strong"] is True and item["has_weak"] is True
    assert item["filename"] == "s1.wav" and item["frame_mask"].all()
    strong = item["strong"].numpy()
    assert np.flatnonzero(strong[:, 1]).tolist() == list(range(50, 125))   # Dog 1.0-2.5 s
    assert np.flatnonzero(strong[:, 2]).tolist() == list(range(100, 201))  # Speech 2.0-4.01 s
    assert not strong[:, 0].any()


def test_short_clip_is_padded_and_masked(lite):
    ds = StrongDataset(desed_lite_layout(lite)["synth_train"], P, CLASSES)
    item = ds[1]  # 3.7 s
    mask = item["frame_mask"]
    assert mask.sum() == 185 and mask[:185].all()
    assert torch.all(item["waveform"][59200:] == 0) and torch.all(item["waveform"][:59200] != 0)
    assert np.flatnonzero(item["strong"][:, 0].numpy()).tolist() == list(range(150, 185))


def test_clip_without_events_has_zero_labels(lite):
    item = StrongDataset(desed_lite_layout(lite)["synth_train"], P, CLASSES)[2]
    assert item["filename"] == "s3.wav"
    assert not item["strong"].any() and not item["weak"].any() and item["has_strong"]


def test_weak_and_unlabeled_items(lite):
    layout = desed_lite_layout(lite)
    w = WeakDataset(layout["weak"], P, CLASSES)[0]
    assert w["weak"].tolist() == [1.0, 0.0, 1.0] and not w["strong"].any()
    assert w["has_strong"] is False and w["has_weak"] is True
    u = UnlabeledDataset(layout["unlabeled"], P, CLASSES)[0]  # 44.1 kHz file, resampled
    assert u["waveform"].shape == (P.clip_samples,) and u["frame_mask"].all()
    assert u["strong"].shape == (500, 3) and not u["weak"].any()
    assert u["has_strong"] is False and u["has_weak"] is False
    with pytest.raises(ValueError, match="pass the class list"):
        UnlabeledDataset(layout["unlabeled"], P)
    with pytest.raises(ValueError, match="needs a strong split"):
        StrongDataset(layout["weak"], P, CLASSES)


def test_batches_collate_and_reads_are_deterministic(lite):
    sets = make_datasets(lite, "smoke")
    assert sets["weak"].classes == CLASSES  # inferred over the whole layout
    batch = next(iter(DataLoader(sets["synth_train"], batch_size=3)))
    assert batch["strong"].shape == (3, 500, 3) and batch["has_strong"].dtype == torch.bool
    assert batch["filename"] == ["s1.wav", "s2.wav", "s3.wav"]
    a, b = sets["synth_train"][1], sets["synth_train"][1]
    assert all(torch.equal(a[k], b[k]) for k in ("waveform", "frame_mask", "strong", "weak"))


def test_infer_classes_is_sorted_union_of_strong_and_weak(lite):
    meta = lite / "metadata"
    fmt.write_weak(meta / "weak.tsv", {"w1.wav": ["Vacuum_cleaner", "Alarm_bell_ringing"]})
    assert infer_classes(lite) == ["Alarm_bell_ringing", "Cat", "Dog", "Speech", "Vacuum_cleaner"]
    assert infer_classes(desed_lite_layout(lite)["weak"]) == ["Alarm_bell_ringing", "Vacuum_cleaner"]
    with pytest.raises(ValueError, match="no event labels"):
        infer_classes([desed_lite_layout(lite)["unlabeled"]])


def test_missing_file_raises_naming_tsv_and_row(lite):
    with open(lite / "metadata" / "synth_train.tsv", "a") as f:
        f.write("gone.wav\t0.0\t1.0\tCat\n")  # row 6
    spec = desed_lite_layout(lite)["synth_train"]
    with pytest.raises(DataError) as info:
        StrongDataset(spec, P, CLASSES)
    assert f"{spec.tsv}, row 6: audio file not found" in str(info.value)
    assert "gone.wav" in str(info.value)

    ds = StrongDataset(spec, P, CLASSES, skip_missing=True)
    assert len(ds) == 3 and ds.n_missing == 1 and ds.missing_files == ["gone.wav"]


def test_bad_labels_fail_construction(lite):
    spec = desed_lite_layout(lite)["synth_train"]
    with pytest.raises(DataError, match="'Speech' is not in the class list"):
        StrongDataset(spec, P, ["Cat", "Dog"])


def test_layout_for_a_real_desed_tree(tmp_path):
    root = tmp_path / "dataset"
    for d in ("audio/train/synthetic21_train/soundscapes_16k", "audio/train/weak_16k",
              "audio/train/unlabel_in_domain_16k", "audio/validation/validation_16k"):
        (root / d).mkdir(parents=True)
    (root / "audio/train/weak_16k/w.wav").write_bytes(b"")  # empty files are fine here
    fmt.write_weak(root / "metadata/train/weak.tsv", {"w.wav": ["Dog"]})
    fmt.write_strong(root / "metadata/validation/validation.tsv", [])
    layout = layout_for(root)
    assert layout == real_desed_layout(root)
    assert list(layout) == ["synth_train", "weak", "unlabeled", "validation"]
    assert layout["weak"] == SplitSpec("weak", "weak", root / "audio/train/weak_16k",
                                       root / "metadata/train/weak.tsv")
    assert layout["unlabeled"].tsv is None
    assert layout["validation"].durations_tsv == root / "metadata/validation/validation_durations.tsv"
    assert layout["synth_train"].tsv == root / "metadata/train/synthetic21_train/soundscapes.tsv"

    (root / "audio/train/strong_label_real_16k").mkdir()
    assert layout_for(root)["strong_real"].tsv == root / "metadata/train/audioset_strong.tsv"


def test_layout_for_an_unknown_folder_says_what_it_looked_for(tmp_path):
    with pytest.raises(DataError) as info:
        layout_for(tmp_path)
    msg = str(info.value)
    assert str(tmp_path) in msg and "metadata/synth_train.tsv" in msg and "metadata/train/weak.tsv" in msg


def test_split_spec_validates_kind():
    with pytest.raises(ValueError, match="kind must be"):
        SplitSpec("x", "strongish", "a", "b.tsv")
    with pytest.raises(ValueError, match="needs a TSV"):
        SplitSpec("x", "weak", "a")
