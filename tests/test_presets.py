import pytest

from matsed_lite.presets import DESED_CLASSES, PRESETS, RECIPES, get_preset, stage_recipe


def test_presets_exist_and_paper_is_the_official_geometry():
    assert set(PRESETS) == {"smoke", "cpu", "gpu", "paper"}
    p = get_preset("paper")
    assert (p.sample_rate, p.n_mels, p.hop_length, p.win_length, p.n_fft) == (32000, 128, 320, 800, 1024)
    assert p.frame_hop_seconds == pytest.approx(0.010)
    assert p.n_frames == 1000 and p.frontend == "passt"
    assert p.split_sizes()["validation"] == 1168


def test_sizes_grow_from_smoke_to_gpu():
    total = {n: sum(get_preset(n).split_sizes().values()) for n in PRESETS}
    assert total["smoke"] < total["cpu"] < total["gpu"] < total["paper"]


def test_cpu_preset_data_fits_its_disk_budget():
    p = get_preset("cpu")
    bytes_16bit = sum(p.split_sizes().values()) * p.clip_samples * 2
    assert bytes_16bit < 1.5e9


def test_overrides_and_unknown_name():
    p = get_preset("smoke", n_validation=3)
    assert p.n_validation == 3 and get_preset("smoke").n_validation != 3
    with pytest.raises(ValueError, match="unknown preset 'big'; choose one of smoke, cpu, gpu, paper"):
        get_preset("big")


def test_classes_are_the_sorted_desed_ten():
    assert len(DESED_CLASSES) == 10 and list(DESED_CLASSES) == sorted(DESED_CLASSES)


def test_context_frame_rate_follows_frames_per_token():
    cpu, gpu, paper = get_preset("cpu"), get_preset("gpu"), get_preset("paper")
    assert (cpu.context_frames, cpu.context_hop_seconds, cpu.mask_block) == (250, pytest.approx(0.04), 5)
    assert (gpu.context_frames, gpu.context_hop_seconds, gpu.mask_block) == (500, pytest.approx(0.02), 10)
    assert (paper.context_frames, paper.context_hop_seconds) == (1000, pytest.approx(0.01))
    for p in (cpu, gpu, paper):  # a masking block is one encoder time token in every preset
        assert p.mask_block == p.frames_per_token
    with pytest.raises(ValueError, match="frames_per_token must divide"):
        get_preset("cpu", frames_per_token=3)


def test_cpu_step_floor_is_desed_lite_own_epoch():
    """cpu's fine-tuning epochs are at least DESED-lite's pass over its strong clips, so on
    DESED-lite (the shipped runs) nothing changes and a smaller folder keeps the budget;
    the other presets keep the DCASE convention (one pass, whatever the folder)."""
    cpu = get_preset("cpu")
    assert cpu.min_steps_per_epoch == cpu.n_synth_train // cpu.batch_strong == 150
    assert {n: PRESETS[n].min_steps_per_epoch for n in PRESETS if n != "cpu"} == {
        "smoke": 0, "gpu": 0, "paper": 0}


def test_stage2_consistency_weight_follows_the_preset():
    """The paper's 40 at the paper and gpu presets; 2 at the lite budgets, where a ramp
    to 40 inside 4 epochs made stage 2's teacher worse (benchmarks/stage2_schedules.py)."""
    assert RECIPES["stage2"].max_consistency == 40.0
    assert {n: stage_recipe("stage2", n).max_consistency for n in PRESETS} == {
        "smoke": 2.0, "cpu": 2.0, "gpu": 40.0, "paper": 40.0}
    # only that field differs, and the other recipes do not depend on the preset
    assert stage_recipe("stage2", "cpu").lr_context == RECIPES["stage2"].lr_context
    assert stage_recipe("stage1", "cpu") == RECIPES["stage1"] == stage_recipe("stage1", "paper")
    with pytest.raises(ValueError, match="unknown recipe 'stage3'; choose from stage1, stage2"):
        stage_recipe("stage3", "cpu")
