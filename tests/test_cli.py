"""The command line as a user types it (in-process through main(), and once as a real process)."""
import subprocess
import sys

import pytest

from matsed_lite.cli import main


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "desed_lite"
    assert main(["synth", "--out", str(root), "--preset", "smoke", "--quiet"]) == 0
    return root


def test_presets_table(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert out.split()[:4] == ["smoke", "cpu", "gpu", "paper"]
    assert "sample_rate" in out and "32000" in out


def test_synth_then_check_is_clean(smoke_data, capsys):
    assert main(["data", "check", str(smoke_data)]) == 0
    out = capsys.readouterr().out
    assert "synth_train" in out and "OK" in out


def test_check_fails_naming_tsv_and_row(smoke_data, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(smoke_data, broken)
    tsv = broken / "metadata" / "validation.tsv"
    lines = tsv.read_text().splitlines()
    name = lines[1].split("\t")[0]
    lines.append(f"{name}\t4.0\t3.0\tDog")
    tsv.write_text("\n".join(lines) + "\n")
    (broken / "audio" / "weak" / "weak_00003.wav").unlink()
    assert main(["data", "check", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"validation.tsv, row {len(lines)}: onset 4 is not before offset 3" in out
    assert "weak_00003.wav" in out
    # Missing files may be skipped and counted instead (real DESED lacks some).
    assert main(["data", "check", str(broken), "--skip-missing"]) == 1  # the bad row remains
    assert "weak_00003.wav" in capsys.readouterr().out


def test_synth_refuses_to_mix_seeds(smoke_data, capsys):
    assert main(["synth", "--out", str(smoke_data), "--preset", "smoke", "--seed", "5", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "desed_lite.json" in err and "seed 0 (asked: 5)" in err


def test_unknown_preset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--out", "x", "--preset", "huge"])
    assert exit_info.value.code == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err


def test_module_entry_point_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "matsed_lite", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("matsed-lite ")


def test_train_pipeline_and_crnn_at_smoke(smoke_data, tmp_path, capsys):
    """The whole pipeline from the shell: pretrain -> stage 1 -> stage 2, then the CRNN."""
    import json

    run = tmp_path / "run"
    assert main(["train", "--data", str(smoke_data), "--preset", "smoke", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    for stage in ("pretrain:", "stage 1:", "stage 2:"):
        assert stage in out
    assert "teacher_psds1=" in out
    assert (run / "pretrain" / "context.pt").is_file() and (run / "stage2" / "model.pt").is_file()
    recipe = json.loads((run / "stage1" / "recipe.json").read_text())
    assert recipe["init"].endswith("context.pt")
    assert main(["train-crnn", "--data", str(smoke_data), "--preset", "smoke",
                 "--out", str(tmp_path / "crnn"), "--epochs", "1"]) == 0
    assert (tmp_path / "crnn" / "model.pt").is_file()
    # a stage 2 without its stage 1 fails with a clear message, not a traceback
    assert main(["finetune", "--stage", "2", "--data", str(smoke_data), "--preset", "smoke",
                 "--out", str(tmp_path / "s2"), "--init", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err
