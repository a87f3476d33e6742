"""Every codec path works with the v2 transforms, so a v2 model can ship as the
default without breaking budgets, truncation, batches, Pillow or bit-exact decoding.
The models are tiny and untrained: their pixels are poor, their files are real."""
import numpy as np
import pytest
import torch
from PIL import Image

import aecodec
from aecodec.codec import Codec
from aecodec.entropy import NUM_CONTEXTS, quantize_counts
from aecodec.format import parse
from aecodec.model.vqvae import VQVAE, ModelConfig
from aecodec.weights import save_weights

TRANSFORMS = ("lite", "deep", "grown")


@pytest.fixture(scope="module", params=TRANSFORMS)
def v2_codec(request, tmp_path_factory):
    torch.manual_seed(0)
    config = ModelConfig(transform=request.param, hidden=16, groups=8, group_dim=4, stages=4, codes=16)
    folder = tmp_path_factory.mktemp(request.param)
    model = VQVAE(config).eval()
    with torch.no_grad():
        for name, value in model.named_parameters():
            if name.endswith("phase_bias"):      # trained ones are not zero: exercise them
                value.uniform_(-0.02, 0.02)
    save_weights(folder, model, quantize_counts(np.zeros((4, 8, NUM_CONTEXTS, 16))),
                 {"name": f"test-{request.param}"})
    return Codec(folder, device="cpu")


@pytest.fixture(scope="module")
def photo():
    from conftest import sample_photo
    return sample_photo("astronaut")[100:180, 150:270].copy()      # 120 x 80: not a stride multiple


def test_round_trip_every_quality(v2_codec, photo):
    sizes = []
    for q in v2_codec.qualities:
        data = v2_codec.encode(photo, q)
        assert parse(data).stage_count == q
        assert np.asarray(v2_codec.decode(data)).shape == photo.shape
        sizes.append(len(data))
    assert sizes == sorted(sizes)


def test_budget_and_truncate(v2_codec, photo):
    full = v2_codec.encode(photo, v2_codec.qualities[-1])
    budget = len(full) * 2 // 3
    fitted = v2_codec.encode(photo, max_bytes=budget)
    assert len(fitted) <= budget
    cut = aecodec.truncate(full, budget)
    assert len(cut) <= budget and parse(cut).stage_count < parse(full).stage_count
    assert np.asarray(v2_codec.decode(cut)).shape == photo.shape


def test_batches_and_threads_give_the_same_pixels(v2_codec, photo):
    """The exact decoder's promise: a file gives the same pixels in any batch and at
    any thread count."""
    files = [v2_codec.encode(photo, 2), v2_codec.encode(photo[::-1].copy(), 2), v2_codec.encode(photo, 3)]
    batched = [np.asarray(im) for im in v2_codec.decode_many(files)]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = [np.asarray(v2_codec.decode(f)) for f in files]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(batched, alone):
        assert np.array_equal(a, b)


def test_tiles_give_the_same_pixels_as_one_piece(v2_codec, photo):
    """Tiles start on the latent grid, so the per-position biases line up in each."""
    data = v2_codec.encode(photo, 3)
    small = Codec(v2_codec.weights.folder, device="cpu", tile=2)
    assert np.array_equal(np.asarray(small.decode(data)), np.asarray(v2_codec.decode(data)))


def test_through_pillow(v2_codec, photo, tmp_path):
    folder = str(v2_codec.weights.folder)
    try:
        aecodec.register_pillow(weights=folder, quality=2)
        Image.fromarray(photo).save(tmp_path / "v2.aec")
        with Image.open(tmp_path / "v2.aec") as im:
            got = np.asarray(im.convert("RGB"))
    finally:
        aecodec.register_pillow()
    assert parse((tmp_path / "v2.aec").read_bytes()).model_id == v2_codec.weights.model_id
    assert np.array_equal(got, np.asarray(v2_codec.decode((tmp_path / "v2.aec").read_bytes())))
