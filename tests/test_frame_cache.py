"""The frame cache: encoder outputs computed once, equal to calling the encoder."""
import pytest
import torch

from matsed_lite import DESED_CLASSES
from matsed_lite.data.datasets import make_datasets
from matsed_lite.data.desed_lite import generate_desed_lite
from matsed_lite.data.features import LogMel
from matsed_lite.models.frame_cache import FrameCache, encode_frames_and_clip, encode_splits
from matsed_lite.models.passt_lite import load_pretrained_encoder
from matsed_lite.presets import get_preset

# Few, short-to-encode clips: the smoke geometry with a handful per split.
PRESET = get_preset("smoke", n_synth_train=3, n_weak=2, n_unlabeled=3, n_validation=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc_data")
    generate_desed_lite(root, PRESET, seed=0, splits=["synth_train", "weak", "unlabeled", "validation"],
                        progress=False)
    return root


@pytest.fixture(scope="module")
def encoded(data):
    torch.set_num_threads(1)
    datasets = make_datasets(data, PRESET, classes=DESED_CLASSES,
                             splits=["synth_train", "weak", "unlabeled", "validation"])
    encoder = load_pretrained_encoder(PRESET)
    cache = encode_splits(datasets, encoder, PRESET, batch_size=4, device="cpu", progress=False)
    return datasets, encoder, cache


def test_shapes_and_dtypes(encoded):
    datasets, encoder, cache = encoded
    N, T, D, K = 10, PRESET.context_frames, encoder.dim, len(DESED_CLASSES)
    assert T == PRESET.n_frames // 2  # smoke: 5 frames per token, half the mel frame rate
    assert len(cache) == N
    assert cache.frames.shape == (N, T, D) and cache.frames.dtype == torch.float16
    assert cache.clip.shape == (N, D) and cache.clip.dtype == torch.float16
    assert cache.frame_mask.shape == (N, T) and cache.frame_mask.dtype == torch.bool
    assert cache.strong.shape == (N, T, K) and cache.weak.shape == (N, K)
    assert cache.split_names == ["synth_train", "weak", "unlabeled", "validation"]
    assert cache.has_strong.tolist() == [True] * 3 + [False] * 5 + [True] * 2
    assert cache.has_weak.tolist() == [True] * 5 + [False] * 3 + [True] * 2
    item = cache[0]
    assert item["frames"].dtype == torch.float32 and item["clip_embedding"].shape == (D,)
    batch = next(iter(torch.utils.data.DataLoader(cache, batch_size=4)))
    assert batch["frames"].shape == (4, T, D) and batch["strong"].dtype == torch.float32


def test_cached_frames_equal_a_direct_encoder_call(encoded):
    datasets, encoder, cache = encoded
    val = cache.split("validation")
    ds = datasets["validation"]
    assert val.filenames == ds.filenames
    wave = torch.stack([ds[i]["waveform"] for i in range(len(ds))])
    with torch.no_grad():
        mel = LogMel(PRESET)(wave)
        frames, clip = encoder.frame_features(mel), encoder.clip_embedding(mel)
    assert torch.allclose(val.frames.float(), frames, atol=1e-2, rtol=1e-3)
    assert torch.allclose(val.clip.float(), clip, atol=1e-2, rtol=1e-3)
    # labels and mask max-pooled from 500 mel frames to 250 context frames
    mask = torch.stack([ds[i]["frame_mask"] for i in range(len(ds))])
    strong = torch.stack([ds[i]["strong"] for i in range(len(ds))])
    assert torch.equal(val.frame_mask, mask[:, 0::2] | mask[:, 1::2])
    assert torch.equal(val.strong.float(), torch.maximum(strong[:, 0::2], strong[:, 1::2]))


def test_one_pass_encoding_matches_the_public_methods():
    encoder = load_pretrained_encoder(PRESET)
    mel = torch.randn(2, PRESET.n_mels, 120)
    f, c = encode_frames_and_clip(encoder, mel)
    with torch.no_grad():
        assert torch.allclose(f, encoder.frame_features(mel), atol=1e-6)
        assert torch.allclose(c, encoder.clip_embedding(mel), atol=1e-6)
    assert not encoder.training


def test_subset_save_load(encoded, tmp_path):
    _, _, cache = encoded
    sub = cache.split(["weak", "validation"])
    assert len(sub) == 4 and sub.splits == ["weak"] * 2 + ["validation"] * 2
    path = sub.save(tmp_path / "cache.pt")
    back = FrameCache.load(path)
    assert torch.equal(back.frames, sub.frames) and back.filenames == sub.filenames
    with pytest.raises(KeyError, match="not in this cache"):
        cache.split("tagging")
