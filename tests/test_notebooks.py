"""The course's notebooks: their structure, and each one executed at the smoke preset.

Executed copies, data and figures go to a temporary folder, so running the tests
never changes the work tree.
"""
import re
from pathlib import Path

import nbformat
import pytest

from matsed_lite.course.runner import list_notebooks, notebook_parameters, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = list_notebooks(ROOT / "notebooks")
IDS = [nb.stem for nb in NOTEBOOKS]
REQUIRED_PARAMETERS = {"PRESET", "DATA_ROOT", "OUT_DIR", "SEED"}
# Seconds a cell may run before it counts as hung. Chapter 08's smoke ablations take about
# 2 minutes on 2 quiet cores and went past 600 s when other jobs shared the cores.
CELL_TIMEOUT = 1500


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_structure(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', need exactly 1"
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert tagged[0] == code_cells[1], "the parameters cell must be the second code cell"
    setup = nb.cells[code_cells[0]].source
    assert '"google.colab" in sys.modules' in setup and "setup(" in setup
    assert "colab.research.google.com" in nb.cells[0].source and path.name in nb.cells[0].source
    assert REQUIRED_PARAMETERS <= set(notebook_parameters(path))
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"{path.name}: cell {i} has outputs"
    assert f'start_notebook("{path.stem}"' in "".join(c.source for c in nb.cells)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("course_smoke")
    return {"data": base / "data", "out": base / "out"}


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executes_at_smoke_preset(path, smoke_run):
    out = smoke_run["out"] / path.stem
    res = run_notebook(path, out, {"PRESET": "smoke", "DATA_ROOT": str(smoke_run["data"]),
                                   "OUT_DIR": str(out), "SEED": 0}, cwd=ROOT, timeout=CELL_TIMEOUT)
    assert res.results["preset"] == "smoke" and res.results["notebook"] == path.stem
    assert list(out.glob("*.png")), "every notebook draws at least one figure"
    CHECKS[path.stem[:2]](res.results, out)


def _check_00(r, out):
    assert r["data_check_ok"] is True
    assert r["build_in_place_frame_labels_clips"] == 24   # every smoke synth_train clip
    assert r["clips"] == {"synth_train": 24, "weak": 12, "unlabeled": 24, "validation": 12}
    assert 0 <= r["roundtrip_max_shift_s"] < r["frame_hop_s"] == pytest.approx(0.02)
    assert r["long_classes_median_s"] > 2 * r["short_classes_median_s"]
    assert r["feature_shape"] == [64, 500]
    assert len(r["broken_tsv_problems"]) == 4
    problems = " | ".join(r["broken_tsv_problems"])
    for expected in ["not before offset", "'Dgo' is not in the class list", "not_on_disk.wav",
                     "past the end"]:
        assert expected in problems
    assert all(re.search(r"row \d+", p) for p in r["broken_tsv_problems"])
    assert r["n_validation_short"] >= 1
    assert {"00_class_gallery.png", "00_clip_views.png", "00_event_lengths.png"} <= {
        p.name for p in out.glob("*.png")}


def _check_01(r, out):
    assert r["token_grid"] == [5, 49]
    assert 0.6 < r["patchout_kept_fraction"] < 0.7  # 4 of 5 rows x 39 of 49 columns
    assert r["pretraining_epochs"] == 2 and 0 <= r["retrained_mAP"] <= 1  # re-trained at smoke
    assert r["frame_feature_shape"] == [250, 128]  # 5 frames per token at smoke and r["tokens_to_frames_error"] < 1e-5
    assert r["tagging_mAP"] > r["tagging_chance"] + 0.2  # the shipped encoder tags
    built = r["build_in_place_max_abs_diff"]  # the chapter's own code against the package's
    assert built["patch_embedding"] < 1e-4 and built["patchout"] == 0


def _check_02(r, out):
    assert r["permutation_error_none"] < 1e-4 < r["permutation_error_relative"]
    assert r["relshift_max_error"] < 1e-4
    assert r["equivariance_error_relative"] < 1e-4 and r["equivariance_error_absolute_min"] > 1e-2
    assert r["attention_shape"] == [1, 4, 250, 250]
    assert r["attention_model"] == "cpu"  # the shipped trained model drives the explorer
    assert r["relative_over_plain_time"] > 0
    built = r["build_in_place_max_abs_diff"]
    assert built["rel_shift"] == 0 and built["relative_attention_layer"] < 1e-4
    assert r["attention_diagonal_share"]["trained"] > r["attention_diagonal_share"]["untrained"]
    assert r["attention_entropy"]["trained"] < r["attention_entropy"]["untrained"]
    assert min(r["equivariance_change_absolute"]) > 1e-2


def _check_03(r, out):
    assert (r["n_blocks"], r["n_masked_blocks"]) == (50, 38)  # 250 frames, blocks of 5 (one token), 75%
    for row in r["measured_ratios"]:
        assert abs(row["frame_fraction"] - row["ratio"]) < 0.02
    shares = r["replacement_shares"]
    assert abs(shares["mask token"] - 0.8) < 0.02 and abs(shares["unchanged"] - 0.1) < 0.02
    enc = r["interpolation_error"]["encoder frame features"]
    assert enc["1"] < enc["10"] and r["encoder_error_ratio_block_vs_frame"] > 2
    assert r["build_in_place_same_mask"] is True
    assert r["build_in_place_max_abs_diff"]["bert_replace"] == 0


def _check_04(r, out):
    assert r["clips"] == {"synth_train": 24, "weak": 12, "unlabeled": 24, "validation": 12}
    assert r["cache_frames_shape"] == [72, 250, 128]
    val = r["val_masked_mse"]
    assert len(val) == r["epochs"] == 2 and len(r["train_masked_mse"]) == 2
    assert val[-1] < val[0] and r["best_val_masked_mse"] == min(val)
    assert 0 < r["interpolation_val_masked_mse"] < r["val_feature_variance"]
    assert isinstance(r["beats_interpolation"], bool)
    assert set(r["positions"]) == {"relative", "absolute", "none"}
    assert all(c["best"] > 0 and len(c["val_masked_mse"]) == r["compare_epochs"]
               for c in r["positions"].values())
    assert Path(r["context_file"]).is_file()
    assert Path(r["cache_file"]).is_file()   # notebook 05's stage 1 reads it
    assert r["build_in_place_max_abs_diff"]["masked_reconstruction_loss"] < 1e-5
    assert {"04_curves.png", "04_reconstructions.png", "04_positions.png", "04_schedule.png"} <= {
        p.name for p in out.glob("*.png")}


def _check_05(r, out):
    assert r["epochs"] == {"stage1": 2, "stage2": 2, "crnn": 2}  # the smoke budgets
    assert r["budget"]["full"] is True and r["crnn_source"] == "trained here"
    assert r["context_source"] == "notebook 04"   # the course shares one pipeline run
    assert r["ema_alpha_at"]["1"] == 0 and r["ema_alpha_at"]["5000"] == pytest.approx(0.999)
    assert r["ramps_per_epoch"]["stage1"][0] == 0 and r["ramps_per_epoch"]["stage1"][-1] == 2
    for run, n in r["epochs"].items():
        for key, curve in r["curves"][run].items():
            assert len(curve) == n and all(0 <= v <= 1 for v in curve), (run, key)
        assert 0 <= r["final"][run]["psds1"] <= 1 and 0 <= r["final"][run]["psds2"] <= 1
        assert 1 <= r["final"][run]["best_epoch"] <= n
        assert (out / r["model_files"][run]).is_file()
        assert (out / run / "recipe.json").is_file()
    built = r["build_in_place_max_abs_diff"]  # the step by hand against make_train_step + update_ema
    assert built["loss"] < 1e-5 and built["student_after_step"] < 1e-5 and built["teacher_after_ema"] < 1e-5
    assert r["ema_toy_rms"]["teacher"] < r["ema_toy_rms"]["student"] / 3
    assert {"05_ema_alpha.png", "05_ema_toy.png", "05_consistency_ramps.png", "05_psds1_curves.png"} <= {
        p.name for p in out.glob("*.png")}


def _check_06(r, out):
    assert (r["n_windows_test"], r["n_windows_train"]) == (17, 12)  # 16 and 11 hops + the flush window
    assert r["feature_shape"] == [250, 128] and -1 <= r["cosine_min"] <= r["cosine_mean"] <= 1
    assert set(r["psds_vs_lambda"]) == {"0.0", "0.25", "0.5", "0.75", "1.0"}
    # A timing: only its sanity is checked here (speed is measured by benchmarks/bench_fusion.py).
    assert r["fusion_cost"]["windows"] == 17 and 0 < r["fusion_cost"]["ratio"] < float("inf")
    assert r["build_in_place_max_abs_diff"]["local_features"] < 1e-4
    assert str(r["best_lambda_psds1"]) in r["psds_vs_lambda"] and isinstance(r["lambda_half_beats_ends"], bool)
    # paired intervals: the reference (0.5) has none against itself, every other lambda has one
    assert r["psds_vs_lambda"]["0.5"]["psds1_minus_ref"] is None
    for lam, v in r["psds_vs_lambda"].items():
        lo, hi = v["psds1_interval"]
        assert lo <= hi
        if lam != "0.5":
            d_lo, d_hi = v["psds1_minus_ref"]
            assert d_lo <= d_hi and (lam in map(str, r["lambdas_beyond_noise"])) == (d_lo > 0 or d_hi < 0)
    assert {"06_windows.png", "06_features.png", "06_psds_vs_lambda.png", "06_fusion_explorer.png"} <= {
        p.name for p in out.glob("*.png")}


def _check_07(r, out):
    assert set(r["psds_by_post"]) == {"median", "max", "none"}
    for v in r["psds_by_post"].values():
        assert 0 <= v["psds1"] <= 1 and 0 <= v["psds2"] <= 1
    assert 0 <= r["collar_f1"] <= 1 and r["n_truth"] >= 1
    toy = r["toy_psds1"]  # PSDS1 of a two-clip toy counted by hand against sed_scores_eval
    assert toy["by_hand"] == pytest.approx(0.995, abs=1e-9)
    assert toy["by_hand"] == pytest.approx(toy["sed_scores_eval"], abs=1e-6)
    assert set(r["operating_points_at_half"]) == {"median", "max", "none"}
    assert all(f >= 0 and 0 <= t <= 1 for pts in r["operating_points_at_half"].values()
               for f, t in pts.values())
    assert {"07_detections.png", "07_psd_roc.png", "07_post_processing.png", "07_operating_point.png"} <= {
        p.name for p in out.glob("*.png")}


def _check_08(r, out):
    assert set(r["systems"]) == {"MAT-SED-lite", "CRNN"}
    assert r["systems"]["MAT-SED-lite"]["trained_at"] == r["systems"]["CRNN"]["trained_at"] == "cpu"
    assert r["ablation_epochs"] == {"pretrain": 1, "stage1": 1, "stage2": 1}
    assert r["ablation_source"].startswith("trained here")   # smoke reruns them
    variants = ["relative", "absolute", "none", "no pre-training", "no consistency", "student"]
    assert list(r["train_ablation"]) == variants and len(r["table"]) == 2 + 3 + 2 + len(variants)
    for name in variants[1:]:
        assert r["ablation_verdicts"][name]["psds1"] in ("better", "worse", "within noise")
        assert len(r["train_ablation"][name]["psds1_by_seed"]) == 2
    assert all(0 <= row["psds1"] <= 1 and 0 <= row["psds2"] <= 1 for row in r["table"])
    assert (out / "results_table.md").is_file()
    per_class = r["systems"]["MAT-SED-lite"]["per_class_psds1"]
    assert set(r["per_class_drawn"]) == {c for c, v in per_class.items() if v is not None}
    # the paired test's verdict follows from its interval
    lo, hi = r["paired_psds1"]["crnn_minus_matsed"]
    assert lo <= hi and r["paired_psds1"]["verdict"] == (
        "MAT-SED-lite ahead beyond noise" if hi < 0 else
        "CRNN ahead beyond noise" if lo > 0 else "not separable on this validation set")
    assert (out / "08_overall.png").is_file() and (out / "08_ablations.png").is_file()
    built = r["build_in_place_paired_interval"]   # the paired bootstrap by hand = the package's
    assert built["draws"] == 5 and built["by_hand"] == pytest.approx(built["package"], abs=1e-9)


CHECKS = {"00": _check_00, "01": _check_01, "02": _check_02, "03": _check_03, "04": _check_04,
          "05": _check_05, "06": _check_06, "07": _check_07, "08": _check_08}


def test_every_notebook_has_a_check():
    assert {nb.name[:2] for nb in NOTEBOOKS} <= set(CHECKS)
