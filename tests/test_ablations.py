"""Chapter 08's multi-seed training ablations: the runner, the verdicts, the shipped results."""
import json

import numpy as np
import pytest
import torch

from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.presets import get_preset
from matsed_lite.training.ablations import (REFERENCE, SHIPPED_FILE, VARIANTS, ablation_epochs,
                                            beyond_noise, budget_fingerprint, encoder_identity,
                                            format_ablations, run_ablations)


def test_verdict_needs_every_seed_on_one_side_of_zero():
    assert beyond_noise([(0.01, 0.05), (0.002, 0.03)]) == "better"
    assert beyond_noise([(-0.05, -0.01), (-0.03, -0.001)]) == "worse"
    assert beyond_noise([(0.01, 0.05), (-0.01, 0.03)]) == "within noise"
    assert beyond_noise([(0.01, 0.05), (-0.05, -0.01)]) == "within noise"  # seeds disagree
    assert beyond_noise([]) == "within noise"


def test_short_budget_epochs_and_bad_arguments(tmp_path):
    p = get_preset("cpu")
    assert ablation_epochs(p, 0.2) == {"pretrain": 2, "stage1": 1, "stage2": 1}
    assert ablation_epochs(p, 1.0) == {"pretrain": p.pretrain_epochs, "stage1": p.stage1_epochs,
                                       "stage2": p.stage2_epochs}
    with pytest.raises(ValueError, match="fraction"):
        ablation_epochs(p, 0.0)
    with pytest.raises(ValueError, match="unknown ablation variant.*'rotary'"):
        run_ablations(tmp_path, "smoke", tmp_path / "out", variants=["rotary"])
    with pytest.raises(ValueError, match="at least one seed"):
        run_ablations(tmp_path, "smoke", tmp_path / "out", seeds=[])


@pytest.fixture(scope="module")
def smoke_ablation(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("abl_data")
    generate_desed_lite(root, "smoke", seed=0, progress=False,
                        splits=["synth_train", "weak", "unlabeled", "validation"])
    out = tmp_path_factory.mktemp("abl_runs")
    res = run_ablations(root, "smoke", out, seeds=[0], variants=["student", "no consistency"],
                        bootstrap=5, echo=lambda *a: None)
    yield root, out, res
    torch.set_num_threads(n)


def test_runs_the_reference_first_and_writes_every_number(smoke_ablation):
    root, out, res = smoke_ablation
    assert res["variants"] == [REFERENCE, "student", "no consistency"]
    assert json.loads((out / "ablations.json").read_text())["summary"] == res["summary"]
    assert res["encoder"] == encoder_identity() and len(res["encoder"]["sha256"]) == 64
    # the student is the reference run's other weights, not a run of its own
    assert res["runs"]["student"]["0"]["run"] == res["runs"][REFERENCE]["0"]["run"]
    assert not (out / "seed0" / "student").exists()
    # no consistency: weight 0 in both stages' recipes, and the reference keeps its own
    for stage in ("stage1", "stage2"):
        rec = json.loads((out / "seed0" / "no_consistency" / stage / "recipe.json").read_text())
        ref = json.loads((out / "seed0" / "relative" / stage / "recipe.json").read_text())
        assert rec["recipe"]["max_consistency"] == 0.0, stage
        assert ref["recipe"]["max_consistency"] > 0.0, stage
        assert rec["curves"]["w_cons"] == [0.0] * len(rec["curves"]["w_cons"]), stage
    for name in res["variants"]:
        row = res["summary"][name]
        assert 0.0 <= row["psds1_mean"] <= 1.0 and len(row["psds1_by_seed"]) == 1
        if name != REFERENCE:
            assert row["verdict"]["psds1"] in ("better", "worse", "within noise")
            lo, hi = res["runs"][name]["0"]["difference"]["psds1"]
            assert lo <= hi
    table = format_ablations(res)
    assert table.count("\n") == 1 + len(res["variants"]) and "| student |" in table


def test_student_and_teacher_weights_differ(smoke_ablation):
    from matsed_lite.evaluation.inference import load_run

    _, out, _ = smoke_ablation
    run = out / "seed0" / "relative" / "stage2"
    teacher, _, _ = load_run(run, "cpu")
    student, _, _ = load_run(run, "cpu", which="student")
    diffs = [float((a - b).abs().max()) for a, b in zip(teacher.state_dict().values(),
                                                         student.state_dict().values())
             if a.is_floating_point()]
    assert max(diffs) > 0


def test_resume_rescores_without_training_again(smoke_ablation):
    root, out, res = smoke_ablation
    with pytest.raises(ValueError, match="seed0 holds runs of an earlier ablation.*--resume"):
        run_ablations(root, "smoke", out, seeds=[0], variants=["student"], echo=lambda *a: None)
    model = out / "seed0" / "relative" / "stage2" / "model.pt"
    before = model.stat().st_mtime_ns
    again = run_ablations(root, "smoke", out, seeds=[0], variants=["student", "no consistency"],
                          bootstrap=5, resume=True, echo=lambda *a: None)
    assert model.stat().st_mtime_ns == before
    assert again["summary"][REFERENCE]["psds1_by_seed"] == res["summary"][REFERENCE]["psds1_by_seed"]


@pytest.mark.skipif(not SHIPPED_FILE.is_file(), reason="no shipped ablation results")
def test_shipped_results_match_the_current_recipe():
    """Fails when the cpu preset or a stage's recipe changed since the shipped results
    were made: rerun the recorded command and copy its ablations.json."""
    shipped = json.loads(SHIPPED_FILE.read_text())
    assert shipped["command"].startswith("matsed-lite ablations")
    assert shipped["preset"] == "cpu" and len(shipped["seeds"]) >= 2
    assert set(shipped["variants"]) == set(VARIANTS)
    assert shipped["fingerprint"] == json.loads(json.dumps(
        budget_fingerprint(get_preset("cpu"), shipped["fraction"])))
    for name, row in shipped["summary"].items():
        assert np.isclose(row["psds1_mean"], np.mean(row["psds1_by_seed"])), name
    # made on another encoder than the one shipped now: allowed only when it says so
    if shipped["encoder"]["sha256"] != encoder_identity()["sha256"]:
        assert "previous shipped encoder" in shipped["note"], shipped["note"]
