"""Evaluating a run and predicting on arbitrary audio: the whole test-time chain."""
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from matsed_lite.training.finetune import finetune
from matsed_lite.data.audio import AudioError
from matsed_lite.cli import main
from matsed_lite.data.desed_format import read_strong
from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.evaluation.score_files import read_score_files
from matsed_lite.evaluation.sed_metrics import psds
from matsed_lite.evaluation.inference import (evaluate_run, find_model, load_run, postprocess_scores,
                                   predict_audio, score_audio, score_split)

PRESET = "smoke"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("inf_data")
    generate_desed_lite(root, PRESET, seed=0, progress=False,
                        splits=["synth_train", "weak", "unlabeled", "validation"])
    run = tmp_path_factory.mktemp("inf_run") / "stage1"
    finetune(root, PRESET, run, stage=1, epochs=1, progress=False)
    yield root, run
    torch.set_num_threads(n)


def test_evaluate_numbers_scores_and_fusion(trained, tmp_path):
    root, run = trained
    res = evaluate_run(run, root, save_scores=tmp_path / "scores")
    assert res["fusion"] == {"lambda": 0.5, "window": 256, "hop": 16}
    assert res["frame_hop"] == pytest.approx(0.04) and res["n_clips"] == 12
    for key in ("psds1", "psds2", "collar_f1", "intersection_f1"):
        assert 0.0 <= res[key] <= 1.0, key
    assert set(res["per_class"]["psds1"]) == set(json.loads(
        (run / "recipe.json").read_text())["classes"])
    # the saved score files reproduce the PSDS independently of the in-memory scores
    files = read_score_files(tmp_path / "scores")
    assert len(files) == 12
    from matsed_lite.evaluation.ground_truth import split_ground_truth
    from matsed_lite.data.datasets import layout_for
    gt, durations = split_ground_truth(layout_for(root)["validation"], res["per_class"]["psds1"])
    assert psds(files, gt, durations, "psds1")["psds"] == pytest.approx(res["psds1"], abs=1e-9)

    plain = evaluate_run(run, root, fusion_lambda=0.0, post="none")
    assert plain["fusion"] is None and plain["post"] == "none"
    # median and max filtering change the scores PSDS sees (a 1-epoch smoke model can
    # score 0 either way, so compare the scores, not the PSDS)
    scored = score_split(run, root, fusion_lambda=0.0)
    med = postprocess_scores(scored["frames"], scored["clips"], scored["classes"], 0.04, "median")
    mx = postprocess_scores(scored["frames"], scored["clips"], scored["classes"], 0.04, "max")
    name = next(iter(med))
    assert (mx[name] >= med[name] - 1e-6).all() and (mx[name] > med[name] + 1e-4).any()
    torch.testing.assert_close(torch.from_numpy(np.stack(list(scored["frames"].values()))),
                               torch.from_numpy(np.stack([plain_frames for plain_frames in
                                                          score_split(run, root, fusion_lambda=0.0)["frames"].values()])))


def test_evaluate_errors(trained, tmp_path):
    root, run = trained
    with pytest.raises(ValueError, match="no strong labels"):
        evaluate_run(run, root, split="unlabeled")
    with pytest.raises(ValueError, match="no split 'test'"):
        evaluate_run(run, root, split="test")
    with pytest.raises(FileNotFoundError, match="no model.pt"):
        find_model(tmp_path)
    with pytest.raises(ValueError, match="post"):
        evaluate_run(run, root, post="mean")


def test_predict_any_length_rate_and_channels(trained, tmp_path):
    root, run = trained
    clip, sr = sf.read(str(next((root / "audio" / "validation").glob("*.wav"))), dtype="float32")
    # 20 s at 44.1 kHz stereo: the same clip twice, so both 10 s pieces must score alike
    from matsed_lite.data.audio import _resample
    hi = _resample(clip, sr, 44100)
    long = np.stack([np.r_[hi, hi], np.r_[hi, hi]], axis=1)
    sf.write(str(tmp_path / "long.flac"), long, 44100)
    sf.write(str(tmp_path / "short.ogg"), clip[: 3 * sr], sr)
    model, info, _ = load_run(run, "cpu")
    frames, clips, hop, duration, mel = score_audio(model, info, tmp_path / "long.flac")
    assert duration == pytest.approx(20.0, abs=1e-3)
    assert frames.shape == (500, 10) and hop == pytest.approx(0.04)
    np.testing.assert_allclose(frames[:250], frames[250:], atol=2e-3)
    short = score_audio(model, info, tmp_path / "short.ogg")[0]
    assert short.shape[0] == math.ceil(3.0 / 0.04)

    out = tmp_path / "events.tsv"
    events = predict_audio([tmp_path / "long.flac", tmp_path / "short.ogg"], run, out,
                           plot_dir=tmp_path / "plots", threshold=0.3)
    back = read_strong(out, classes=info["classes"])
    assert set(back.filenames) == {"long.flac", "short.ogg"}
    assert sum(len(v) for v in events.values()) == len(back.events)
    for e in back.events:
        assert 0 <= e.onset < e.offset <= (20.0 if e.filename == "long.flac" else 3.0) + 1e-6
    assert (tmp_path / "plots" / "long.flac.png").is_file()


def test_predict_refuses_bad_files_and_writes_nothing(trained, tmp_path):
    root, run = trained
    good = next((root / "audio" / "validation").glob("*.wav"))
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    sf.write(str(tmp_path / "empty.wav"), np.zeros((0,), np.float32), 16000)
    out = tmp_path / "events.tsv"
    with pytest.raises(AudioError, match="broken.wav: unreadable"):
        predict_audio([good, tmp_path / "broken.wav"], run, out)
    with pytest.raises(AudioError, match="empty.wav: audio file has zero samples"):
        predict_audio([tmp_path / "empty.wav"], run, out)
    assert not out.exists()
    assert main(["predict", str(tmp_path / "missing.wav"), "--run", str(run), "--out", str(out)]) == 1


def test_cli_evaluate_writes_json(trained, tmp_path, capsys):
    root, run = trained
    out = tmp_path / "res.json"
    assert main(["evaluate", "--run", str(run), "--data", str(root), "--json", str(out),
                 "--fusion-lambda", "0"]) == 0
    res = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "overall" in printed and f"{res['psds1']:7.3f}" in printed
    assert res["fusion"] is None and res["split"] == "validation"
    # Diagnostics: frame AP per class, 95% intervals over clips, the recipe's temperature.
    assert set(res["frame_ap_per_class"]) == set(res["per_class"]["psds1"])
    lo, hi = res["intervals"]["psds1"]
    assert lo <= hi and res["bootstrap"]["n_resamples"] == 50
    assert "95% bootstrap intervals" in printed and res["temperature"] == 0.5


def test_predict_scores_at_the_recipes_temperature(trained, tmp_path, monkeypatch):
    """predict divides the logits as evaluate does (MAT-SED's 0.5 unless told): the
    threshold then means the same thing in both."""
    import matsed_lite.evaluation.inference as inference

    root, run = trained
    seen, real = [], inference.score_audio

    def spy(model, info, path, fusion=None, temperature=1.0, keep_mel=True):
        seen.append(temperature)
        return real(model, info, path, fusion, temperature, keep_mel)

    monkeypatch.setattr(inference, "score_audio", spy)
    clip = next((root / "audio" / "validation").glob("*.wav"))
    predict_audio([clip], run, tmp_path / "a.tsv")
    predict_audio([clip], run, tmp_path / "b.tsv", temperature=1.0)
    assert seen == [0.5, 1.0]
    with pytest.raises(ValueError, match="temperature"):
        predict_audio([clip], run, tmp_path / "c.tsv", temperature=0.0)


def test_compare_pairs_runs_on_the_same_resamples(trained, tmp_path, capsys):
    import shutil
    from matsed_lite.evaluation.inference import compare_runs
    from matsed_lite.models.checkpoints import shipped_model_path
    root, run = trained
    twin = tmp_path / "twin"
    shutil.copytree(run, twin)
    crnn = shipped_model_path("crnn")
    res = compare_runs([run, twin, crnn], root, bootstrap=5)
    a, b, c = (res["runs"][str(r)] for r in (run, twin, crnn))
    # the same model on the same resamples: equal scores, a difference of exactly zero
    assert a["psds1"] == b["psds1"] and a["intervals"] == b["intervals"]
    assert b["difference_from_reference"] == {"psds1": (0.0, 0.0), "psds2": (0.0, 0.0)}
    assert a["difference_from_reference"] is None and res["reference"] == str(run)
    # another model with another frame hop is scored at its own hop, as evaluate scores it
    single = evaluate_run(crnn, root)
    assert c["psds1"] == pytest.approx(single["psds1"]) and c["kind"] == "crnn"
    assert a["psds1"] == pytest.approx(evaluate_run(run, root)["psds1"])
    lo, hi = c["difference_from_reference"]["psds1"]
    assert lo <= hi and res["n_clips"] == 12

    out = tmp_path / "cmp.json"
    assert main(["compare", "--run", str(run), "--run", str(twin), "--data", str(root),
                 "--bootstrap", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(reference)" in printed and "paired clip resamples" in printed
    assert json.loads(out.read_text())["bootstrap"]["paired"] is True


def test_compare_refuses_one_run_and_a_repeated_run(trained, capsys):
    root, run = trained
    assert main(["compare", "--run", str(run), "--data", str(root)]) == 1
    assert "compare needs at least two runs, got 1" in capsys.readouterr().err
    assert main(["compare", "--run", str(run), "--run", str(run), "--data", str(root)]) == 1
    assert f"run {run} is given twice" in capsys.readouterr().err
    other_spelling = run.parent / ".." / run.parent.name / run.name
    assert main(["compare", "--run", str(run), "--run", str(other_spelling), "--data",
                 str(root)]) == 1
    assert f"run {other_spelling} is given twice" in capsys.readouterr().err


def test_lambda_sweep_scores_like_one_run_per_lambda(trained):
    from matsed_lite.evaluation.inference import score_split_lambdas

    root, run = trained
    sweep = score_split_lambdas(run, root, [0.0, 0.5, 1.0], device="cpu")
    for lam, got in sweep.items():
        one = score_split(run, root, "validation", fusion_lambda=lam, device="cpu")
        assert got["fusion"] == one["fusion"] and got["temperature"] == one["temperature"]
        assert got["frames"].keys() == one["frames"].keys()
        for k in one["frames"]:
            np.testing.assert_allclose(got["frames"][k], one["frames"][k], rtol=0, atol=1e-6)
            np.testing.assert_allclose(got["clips"][k], one["clips"][k], rtol=0, atol=1e-6)
    # the lambdas differ: the sweep really mixes
    k = next(iter(sweep[0.0]["frames"]))
    assert np.abs(sweep[0.0]["frames"][k] - sweep[1.0]["frames"][k]).max() > 1e-4
    with pytest.raises(ValueError, match="lambda must be in"):
        score_split_lambdas(run, root, [0.5, 1.5], device="cpu")
