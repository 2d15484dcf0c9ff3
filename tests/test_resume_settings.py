"""A resumed run refuses settings that differ from the run it resumes, naming them."""
import json

import pytest

from matsed_lite.cli import main
from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.data.layout import infer_classes, layout_for
from matsed_lite.presets import get_preset
from matsed_lite.training import encoder_pretraining, finetune as finetune_module
from matsed_lite.training.finetune import finetune, train_crnn
from matsed_lite.training.run_state import check_settings


class _Stop(Exception):
    """Raised instead of training: the settings are checked before the engine runs."""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume") / "d"
    small = get_preset("smoke", n_synth_train=4, n_weak=4, n_unlabeled=4, n_validation=6)
    generate_desed_lite(root, small, splits=["synth_train", "weak", "unlabeled", "validation"],
                        progress=False)
    return root


@pytest.fixture
def no_training(monkeypatch):
    def fake_fit(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(finetune_module, "fit", fake_fit)


def _interrupted(run_fn, out):
    """Start a run (its settings get written), then leave a last.pt as an interruption would."""
    with pytest.raises(_Stop):
        run_fn()
    assert (out / "settings.json").is_file()
    (out / "last.pt").write_bytes(b"checkpoint")


def test_check_settings_names_each_difference(tmp_path):
    base = {"preset": "smoke", "classes": ["a", "b"], "seed": 0, "data_root": "/x"}
    assert check_settings(tmp_path, base, resume=False) is False
    (tmp_path / "last.pt").write_bytes(b"x")
    moved = {**base, "data_root": "/elsewhere"}  # the data folder may move
    assert check_settings(tmp_path, moved, resume=True) is True
    with pytest.raises(ValueError, match=r"classes: run \['a', 'b'\], now \['b', 'a'\]; seed: run 0, now 1"):
        check_settings(tmp_path, {**base, "classes": ["b", "a"], "seed": 1}, resume=True)
    assert json.loads((tmp_path / "settings.json").read_text())["classes"] == ["a", "b"]


def test_finetune_resume_refuses_another_class_list(data, tmp_path, no_training):
    out = tmp_path / "s1"
    classes = infer_classes(layout_for(data))
    _interrupted(lambda: finetune(data, "smoke", out, stage=1, epochs=2, progress=False), out)
    with pytest.raises(ValueError, match="cannot resume .*other settings .*classes: run"):
        finetune(data, "smoke", out, stage=1, epochs=2, progress=False, resume=True,
                 classes=classes[::-1])
    for change, key in (({"epochs": 3}, "epochs"), ({"pos": "absolute"}, "pos"),
                        ({"seed": 4}, "seed"), ({"lr_scale": 1.0}, "lr_scale")):
        kwargs = {"epochs": 2, **change}
        with pytest.raises(ValueError, match=f"other settings .*{key}: run"):
            finetune(data, "smoke", out, stage=1, progress=False, resume=True, **kwargs)
    with pytest.raises(_Stop):  # the same settings resume
        finetune(data, "smoke", out, stage=1, epochs=2, progress=False, resume=True)


def test_train_crnn_resume_refuses_other_settings(data, tmp_path, no_training):
    out = tmp_path / "crnn"
    _interrupted(lambda: train_crnn(data, "smoke", out, epochs=2, progress=False), out)
    with pytest.raises(ValueError, match="other settings .*lr: run 0.001, now 0.01"):
        train_crnn(data, "smoke", out, epochs=2, progress=False, resume=True, lr=1e-2)


def test_pretrain_encoder_resume_refuses_other_settings(tmp_path, monkeypatch):
    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(encoder_pretraining, "generate_desed_lite", stop)
    out = tmp_path / "enc"
    with pytest.raises(_Stop):
        encoder_pretraining.pretrain_encoder(tmp_path / "d", "smoke", out, epochs=2, progress=False)
    (out / "run" / "last.pt").write_bytes(b"checkpoint")
    with pytest.raises(ValueError, match="other settings .*epochs: run 2, now 3"):
        encoder_pretraining.pretrain_encoder(tmp_path / "d", "smoke", out, epochs=3,
                                             progress=False, resume=True)


def test_cli_finetune_resume_with_other_classes_is_one_line(data, tmp_path, no_training, capsys):
    out = tmp_path / "s1"
    classes = infer_classes(layout_for(data))
    _interrupted(lambda: finetune(data, "smoke", out, stage=1, epochs=2, progress=False), out)
    assert main(["finetune", "--stage", "1", "--data", str(data), "--preset", "smoke", "--out",
                 str(out), "--epochs", "2", "--resume", "--classes", ",".join(classes[::-1])]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "classes: run" in err
