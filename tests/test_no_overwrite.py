"""Nothing a user owns is overwritten: their data folder, their audio, their earlier runs."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from matsed_lite.cli import main
from matsed_lite.course.notebook import NotebookRun
from matsed_lite.data.desed_format import parse_strong, parse_unlabeled, parse_weak
from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.models.checkpoints import SHIPPED_CRNN
from matsed_lite.presets import get_preset

STRONG = "filename\tonset\toffset\tevent_label\nmine.wav\t0.5\t1.5\tDog\n"


def _user_folder(root: Path) -> Path:
    (root / "metadata").mkdir(parents=True)
    (root / "audio" / "validation").mkdir(parents=True)
    (root / "metadata" / "validation.tsv").write_text(STRONG)
    sf.write(str(root / "audio" / "validation" / "mine.wav"), np.zeros(16000, np.float32), 16000)
    return root


def test_synth_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    root = _user_folder(tmp_path / "MY_DESED")
    with pytest.raises(ValueError, match="no desed_lite.json.*nothing in it is overwritten"):
        generate_desed_lite(root, "smoke", splits=["validation"], progress=False)
    assert main(["synth", "--out", str(root), "--preset", "smoke", "--quiet"]) == 1
    assert "desed_lite.json" in capsys.readouterr().err
    assert (root / "metadata" / "validation.tsv").read_text() == STRONG
    assert sorted(p.name for p in (root / "audio" / "validation").iterdir()) == ["mine.wav"]


def test_notebooks_use_the_users_folder_as_it_is(tmp_path):
    root = _user_folder(tmp_path / "MY_DESED")
    out = tmp_path / "out"
    out.mkdir()
    run = NotebookRun("00_x", get_preset("smoke"), root, out, 0)
    assert run.ensure_data() == {}
    assert (root / "metadata" / "validation.tsv").read_text() == STRONG
    assert not (root / "desed_lite.json").exists()
    # An empty or new folder is still generated into.
    fresh = NotebookRun("00_x", get_preset("smoke"), tmp_path / "new", out, 0)
    assert "validation" in fresh.ensure_data(splits=["validation"])


def test_predict_out_may_not_be_an_input(tmp_path, capsys):
    audio = tmp_path / "a.wav"
    sf.write(str(audio), np.zeros(8000, np.float32), 16000)
    before = audio.read_bytes()
    assert main(["predict", str(audio), "--run", str(SHIPPED_CRNN), "--out", str(audio)]) == 1
    assert "is one of the input audio files" in capsys.readouterr().err
    assert audio.read_bytes() == before


def test_predict_plots_of_same_stem_do_not_collide(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name in ("a.flac", "a.ogg"):
        sf.write(str(tmp_path / name), 0.1 * rng.standard_normal(16000).astype(np.float32), 16000)
    assert main(["predict", str(tmp_path / "a.flac"), str(tmp_path / "a.ogg"), "--run",
                 str(SHIPPED_CRNN), "--out", str(tmp_path / "e.tsv"),
                 "--plot", str(tmp_path / "plots")]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["a.flac.png", "a.ogg.png"]


@pytest.mark.parametrize("command", ["train", "finetune", "train-crnn", "pretrain"])
def test_training_again_without_resume_keeps_the_old_run(tmp_path, command, capsys):
    out = tmp_path / "run"
    old = out / ("stage1" if command == "train" else "") / "last.pt"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"an earlier run")
    argv = [command, "--data", str(tmp_path / "data"), "--preset", "smoke", "--out", str(out)]
    argv += ["--stage", "1"] if command == "finetune" else []
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "--resume" in err and "nothing was deleted" in err
    assert old.read_bytes() == b"an earlier run"


def test_tsv_names_may_not_leave_the_split_folder(tmp_path):
    strong = tmp_path / "s.tsv"
    strong.write_text("filename\tonset\toffset\tevent_label\n../secret.wav\t0\t1\tDog\n"
                      "/etc/x.wav\t0\t1\tDog\nok.wav\t0\t1\tDog\n")
    labels, problems = parse_strong(strong)
    assert labels.filenames == ["ok.wav"]
    assert [p.row for p in problems] == [2, 3]
    assert all("outside the split's audio folder" in p.message for p in problems)
    weak = tmp_path / "w.tsv"
    weak.write_text("filename\tevent_labels\n..\\\\up.wav\tDog\n")
    assert "outside" in parse_weak(weak)[1][0].message
    unl = tmp_path / "u.tsv"
    unl.write_text("filename\nsub/../../up.wav\n")
    assert "outside" in parse_unlabeled(unl)[1][0].message
