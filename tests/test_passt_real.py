"""Real PaSST-S frame features (optional extra): built offline with random weights.

Skipped unless hear21passt is installed (``pip install "matsed-lite[passt]"``).
One 10 s forward and a few short ones on CPU; no weights are downloaded."""
import copy
import sys

import pytest

pytest.importorskip("hear21passt")

import torch  # noqa: E402

from matsed_lite.models import passt_real  # noqa: E402
from matsed_lite.models.passt_lite import tokens_to_frames  # noqa: E402
from matsed_lite.models.passt_real import (  # noqa: E402
    CHECKPOINT_NAME, INSTALL_HINT, RealPaSSTFrames, load_real_passt,
)

SR = 32000


@pytest.fixture(scope="module")
def frames_model():
    torch.manual_seed(0)
    m = RealPaSSTFrames(pretrained=False).eval()
    with torch.no_grad():  # a non-trivial frame norm, so applying it is visible
        m.frame_norm.weight.normal_(1.0, 0.5)
        m.frame_norm.bias.normal_(0.0, 0.5)
    return m


@pytest.fixture(scope="module")
def ten_seconds(frames_model):
    """One 10 s forward, with spy hooks recording every block's input and output."""
    net = frames_model.net
    spied = {}
    handles = [net.blocks[0].register_forward_pre_hook(
        lambda _m, args: spied.__setitem__("input", args[0]))]
    for i, blk in enumerate(net.blocks):
        handles.append(blk.register_forward_hook(
            lambda _m, _a, out, i=i: spied.__setitem__(i + 1, out)))
    wav = torch.randn(1, 10 * SR, generator=torch.Generator().manual_seed(1))
    try:
        with torch.no_grad():
            out = frames_model(wav)
    finally:
        for h in handles:
            h.remove()
    return wav, out, spied


def test_feature_hook_on_block_10(frames_model):
    assert len(frames_model.net.blocks) == 12
    assert frames_model.block == 10
    assert frames_model.feature_module is frames_model.net.blocks[9]
    with pytest.raises(ValueError, match="block"):
        RealPaSSTFrames(model=frames_model.net, block=13)


def test_ten_second_clip_shapes(ten_seconds):
    _, out, _ = ten_seconds
    assert out["frames"].shape == (1, 1000, 768)
    assert out["tokens"].shape == (1, 12, 99, 768)
    assert out["clip_embedding"].shape == (1, 768)


def test_hooks_are_removed_after_forward(frames_model, ten_seconds):
    net = frames_model.net
    assert all(not b._forward_hooks for b in net.blocks)
    assert not net.norm._forward_hooks


def test_frames_match_manual_computation_from_block_10(frames_model, ten_seconds):
    _, out, spied = ten_seconds

    def manual(block):
        grid = spied[block][:, 2:].reshape(1, 12, 99, 768)
        with torch.no_grad():
            return tokens_to_frames(frames_model.frame_norm(grid), 1000, frames_per_token=10)

    assert torch.equal(out["tokens"], spied[10][:, 2:].reshape(1, 12, 99, 768))
    torch.testing.assert_close(out["frames"], manual(10))
    for other in (9, 11):  # really block 10, not a neighbour
        assert not torch.allclose(out["frames"], manual(other), atol=1e-3)


def test_token_layout_is_frequency_major(frames_model, ten_seconds):
    """Sequence position 2 + f * T' + t holds frequency patch f, time patch t:
    checked on the blocks' input against the patch grid built by hand."""
    wav, _, spied = ten_seconds
    net = frames_model.net
    with torch.no_grad():
        mel = frames_model.logmel(wav)
        grid = net.patch_embed.proj(mel.unsqueeze(1))              # (1, 768, 12, 99)
        grid = grid + net.time_new_pos_embed + net.freq_new_pos_embed
    assert grid.shape == (1, 768, 12, 99)
    seq = spied["input"][:, 2:].reshape(1, 12, 99, 768)
    torch.testing.assert_close(seq, grid.permute(0, 2, 3, 1))


def test_clip_embedding_is_mean_of_final_normed_patch_tokens(frames_model, ten_seconds):
    _, out, spied = ten_seconds
    with torch.no_grad():
        expected = frames_model.net.norm(spied[12])[:, 2:].mean(dim=1)
    torch.testing.assert_close(out["clip_embedding"], expected)


def test_shorter_clip_and_frame_features_only(frames_model):
    wav = torch.randn(1, 2 * SR, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = frames_model(wav)
        frames = frames_model.frame_features(wav)  # stops after block 10
    assert out["tokens"].shape == (1, 12, 19, 768)
    assert out["frames"].shape == (1, 200, 768)
    torch.testing.assert_close(frames, out["frames"])


def test_clip_length_limits(frames_model):
    with pytest.raises(ValueError, match="too long"):
        frames_model.frame_features(torch.randn(1, 11 * SR))
    with pytest.raises(ValueError, match="too short"):
        frames_model.frame_features(torch.randn(1, 1000))


def test_logmel_matches_the_course_passt_front_end(frames_model):
    """The course's LogMel("paper") and hear21passt's front end agree (eval mode;
    the input is already peak-normalised, as ``logmel`` does); LogMel drops the
    centred STFT's extra last frame, so both give 100 frames for 1 s."""
    from matsed_lite.data.features import LogMel

    wav = torch.randn(2, SR, generator=torch.Generator().manual_seed(3))
    wav = wav / wav.abs().amax(dim=1, keepdim=True)
    with torch.no_grad():
        ours = LogMel("paper")(wav)
        theirs = frames_model.logmel(wav)
    assert theirs.shape == (2, 128, 100) and ours.shape == (2, 128, 100)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_training_mode_gradients_and_deepcopy(frames_model):
    """A mean teacher deep-copies the student: the copy must run on its own and
    match. Gradients reach the frame norm and block 10, not the skipped blocks."""
    student = copy.deepcopy(frames_model)
    wav = torch.randn(1, SR // 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(student.frame_features(wav),
                                   frames_model.frame_features(wav))
    student.net.requires_grad_(False)        # only blocks 10-12 train here: a
    student.net.blocks[9:].requires_grad_(True)  # short backward, like stage 2's top
    student.train()
    student.frame_features(wav).square().mean().backward()
    assert student.frame_norm.weight.grad is not None
    assert student.net.blocks[9].mlp.fc2.weight.grad is not None
    assert student.net.blocks[11].mlp.fc2.weight.grad is None
    assert frames_model.frame_norm.weight.grad is None


def test_missing_package_gives_install_hint(monkeypatch):
    for name in ("hear21passt", "hear21passt.models", "hear21passt.models.passt",
                 "hear21passt.models.preprocess"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "matsed-lite\[passt\]"'):
        load_real_passt(pretrained=False)
    assert 'matsed-lite[passt]' in INSTALL_HINT


def test_nonexistent_checkpoint_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(RuntimeError) as info:
        load_real_passt(checkpoint_path=missing)
    msg = str(info.value)
    assert str(missing) in msg and CHECKPOINT_NAME in msg and "Colab" in msg


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    calls = []

    def no_network(url, dst):
        calls.append(url)
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(passt_real, "_download", no_network)
    with pytest.raises(RuntimeError) as info:
        load_real_passt(pretrained=True)
    msg = str(info.value)
    assert calls and calls[0].endswith(CHECKPOINT_NAME)
    assert "name resolution" in msg and "internet" in msg
    assert str(tmp_path / "hub" / "checkpoints" / CHECKPOINT_NAME) in msg
    with pytest.raises(RuntimeError, match="download=False"):
        load_real_passt(pretrained=True, download=False)


def test_unreadable_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="could not be read"):
        load_real_passt(checkpoint_path=junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)
    with pytest.raises(RuntimeError, match="does not match PaSST-S"):
        load_real_passt(checkpoint_path=foreign)


@pytest.fixture
def tiny_passt(monkeypatch):
    """Make load_real_passt build a tiny PaSST (same class, same key layout,
    width 24, 2 blocks), so the loading logic is tested in well under a second."""
    from hear21passt.models import passt as passt_module

    def tiny(**_kwargs):
        return passt_module.PaSST(img_size=(128, 998), patch_size=16, stride=10,
                                  in_chans=1, num_classes=527, embed_dim=24, depth=2,
                                  num_heads=2, distilled=True)

    monkeypatch.setattr(passt_module, "get_model", tiny)
    return tiny


def test_local_checkpoint_loads(tiny_passt, tmp_path):
    """A state dict in a local file (wrapped as {"model": ...}, as some
    checkpoints are) loads strictly; a mismatching one is a clear error."""
    source = tiny_passt()
    path = tmp_path / CHECKPOINT_NAME
    torch.save({"model": source.state_dict()}, path)
    net = load_real_passt(checkpoint_path=path)
    assert not net.training
    for key, value in source.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key
    state = source.state_dict()
    state.pop("norm.bias")
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="does not match PaSST-S.*missing keys norm.bias"):
        load_real_passt(checkpoint_path=path)
    state = source.state_dict()
    state["norm.weight"] = torch.ones(7)
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="does not match PaSST-S.*size mismatch"):
        load_real_passt(checkpoint_path=path)


def test_cached_checkpoint_is_used_without_download(tiny_passt, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(passt_real, "_download", lambda *a: pytest.fail("downloaded"))
    cached = passt_real.default_checkpoint_path()
    cached.parent.mkdir(parents=True)
    torch.save(tiny_passt().state_dict(), cached)
    assert load_real_passt(pretrained=True) is not None
