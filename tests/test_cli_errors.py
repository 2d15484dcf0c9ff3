"""Every CLI error is one line naming the file or argument and what to do (exit 1; 2 for
usage; 130 when interrupted), and the inputs that used to give silent wrong results."""
import numpy as np
import pytest
import soundfile as sf

from matsed_lite import commands, files
from matsed_lite.cli import main
from matsed_lite.data.desed_format import parse_durations, parse_strong, parse_weak, write_unlabeled
from matsed_lite.evaluation import inference
from matsed_lite.evaluation.inference import load_run, score_audio, scoring_temperature
from matsed_lite.models.checkpoints import SHIPPED_CRNN


@pytest.fixture
def audio(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(str(path), 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32),
             16000)
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") or err.startswith("interrupted"), err
    return err


def test_out_is_a_folder(audio, tmp_path, capsys):
    assert main(["predict", str(audio), "--run", str(SHIPPED_CRNN), "--out", str(tmp_path)]) == 1
    assert f"{tmp_path}: is a folder" in _one_line(capsys)


def test_plot_is_a_file_and_nothing_is_written(audio, tmp_path, capsys):
    plot = tmp_path / "plot"
    plot.write_text("mine")
    out = tmp_path / "e.tsv"
    assert main(["predict", str(audio), "--run", str(SHIPPED_CRNN), "--out", str(out),
                 "--plot", str(plot)]) == 1
    assert f"{plot}: exists and is not a folder" in _one_line(capsys)
    assert not out.exists() and plot.read_text() == "mine"


def test_unwritable_out_names_the_folder(audio, tmp_path, capsys, monkeypatch):
    def denied(*args, dir=None, **kwargs):  # what a read-only folder answers (also as root)
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(files.tempfile, "mkstemp", denied)
    assert main(["predict", str(audio), "--run", str(SHIPPED_CRNN), "--out",
                 str(tmp_path / "ro" / "e.tsv")]) == 1
    assert "ro: permission denied" in _one_line(capsys)


@pytest.mark.parametrize("exc, code, text", [
    (KeyboardInterrupt(), 130, "interrupted; rerun with --resume to continue"),
    (MemoryError(), 1, "out of memory"),
    (EOFError("Ran out of input"), 1, "a file ended early"),
])
def test_interrupt_memory_and_eof(exc, code, text, tmp_path, capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(commands, "_print_result", boom)
    argv = ["train-crnn", "--data", str(tmp_path), "--preset", "smoke", "--out", str(tmp_path / "r")]
    monkeypatch.setattr("matsed_lite.training.finetune.train_crnn", lambda *a, **k: {})
    assert main(argv) == code
    assert text in _one_line(capsys)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "x"])
def test_temperature_must_be_positive(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--run", str(SHIPPED_CRNN), "--data", str(tmp_path), "--json",
              str(tmp_path / "r.json"), "--temperature", value])
    assert info.value.code == 2 and "--temperature" in capsys.readouterr().err
    if value != "x":
        with pytest.raises(ValueError, match="positive"):
            scoring_temperature({}, float(value))


def test_tab_or_newline_in_a_file_name(tmp_path, capsys):
    with pytest.raises(ValueError, match="may not hold a tab or a line break"):
        write_unlabeled(tmp_path / "u.tsv", ["a\tb.wav"])
    assert not (tmp_path / "u.tsv").exists()
    odd = tmp_path / "a\nb.wav"
    sf.write(str(odd), np.zeros(1600, np.float32), 16000)
    assert main(["predict", str(odd), "--run", str(SHIPPED_CRNN), "--out", str(tmp_path / "e.tsv")]) == 1
    assert "tab or a line break" in capsys.readouterr().err
    assert not (tmp_path / "e.tsv").exists()


def test_bom_is_read_and_space_separated_rows_are_named(tmp_path):
    bom = tmp_path / "bom.tsv"
    bom.write_bytes("\ufefffilename\tonset\toffset\tevent_label\na.wav\t0\t1\tDog\n".encode())
    labels, problems = parse_strong(bom)
    assert not problems and labels.filenames == ["a.wav"]
    spaced = tmp_path / "s.tsv"
    spaced.write_text("filename\tonset\toffset\tevent_label\na.wav 0.5 1.0 Dog\n")
    (problem,) = parse_strong(spaced)[1]
    assert "expected 4 tab-separated fields" in problem.message and "spaces" in problem.message
    weak = tmp_path / "w.tsv"
    weak.write_text("filename\tevent_labels\na.wav Dog,Cat\n")
    assert "spaces, not tabs" in parse_weak(weak)[1][0].message
    dur = tmp_path / "d.tsv"
    dur.write_text("filename\tduration\na.wav 10.0\n")
    assert "spaces, not tabs" in parse_durations(dur)[1][0].message


def test_predict_streams_long_files_in_pieces(tmp_path, monkeypatch):
    """The decoder is asked for one piece at a time and the events equal the whole-file path."""
    rng = np.random.default_rng(1)
    path = tmp_path / "long.wav"
    sf.write(str(path), 0.2 * rng.standard_normal(16000 * 35).astype(np.float32), 16000)
    model, info, _ = load_run(SHIPPED_CRNN, "cpu")
    asked = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    streamed = score_audio(model, info, path, keep_mel=False)
    assert asked and max(asked) == 160000 and -1 not in asked  # one 10 s piece at a time
    monkeypatch.setattr(sf.SoundFile, "read", real_read)

    def whole_file(p, sample_rate, piece):  # the old path: decode everything, then cut
        from matsed_lite.data.audio import load_audio
        wave, _ = load_audio(p, sample_rate)
        return [wave[i:i + piece] for i in range(0, len(wave), piece)]

    monkeypatch.setattr(inference, "stream_audio", whole_file)
    whole = score_audio(model, info, path, keep_mel=False)
    np.testing.assert_array_equal(streamed[0], whole[0])
    assert streamed[3] == pytest.approx(35.0)


def test_encoder_weights_errors_are_one_line(tmp_path, capsys):
    # stage 2 continues stage 1's encoder: another one is refused before any data is read
    assert main(["finetune", "--stage", "2", "--data", str(tmp_path), "--preset", "smoke",
                 "--out", str(tmp_path / "s2"), "--init", str(tmp_path / "s1"),
                 "--encoder-weights", str(tmp_path)]) == 1
    assert "--encoder-weights is for pre-training and stage 1" in _one_line(capsys)
    # a folder that is not a pretrain-encoder run names what is missing
    assert main(["pretrain", "--data", str(tmp_path), "--preset", "smoke",
                 "--out", str(tmp_path / "p"), "--encoder-weights", str(tmp_path / "none")]) == 1
    assert f"--encoder-weights {tmp_path / 'none'}: no encoder.pt there" in _one_line(capsys)


@pytest.mark.parametrize("value, text", [("0", "must be 1 or more, got 0"),
                                         ("two", "'two' is not a whole number")])
def test_stop_after_epoch_must_be_a_positive_whole_number(value, text, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["pretrain-encoder", "--data", str(tmp_path), "--out", str(tmp_path / "e"),
              "--stop-after-epoch", value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--stop-after-epoch" in err and text in err
    assert not (tmp_path / "e").exists()
