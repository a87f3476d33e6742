"""The header's model id selects the model: a codec decodes the files of every model
installed beside its own (the models a new default replaced stay as subfolders)."""
import shutil

import numpy as np
import pytest
import torch

from aecodec.card import default_weights_dir, model_library
from aecodec.codec import Codec
from aecodec.entropy import NUM_CONTEXTS, quantize_counts
from aecodec.format import FormatError, parse
from aecodec.model.vqvae import VQVAE, ModelConfig
from aecodec.weights import save_weights


def _small_model(folder, seed: int) -> bytes:
    """A different, untrained model (its pixels are poor, but its files are real)."""
    torch.manual_seed(seed)
    config = ModelConfig(hidden=32, groups=8, group_dim=4, stages=3, codes=16)
    freqs = quantize_counts(np.zeros((3, 8, NUM_CONTEXTS, 16)))
    card = save_weights(folder, VQVAE(config).eval(), freqs, {"name": f"test-model-{seed}"})
    return bytes.fromhex(card["model_id"])


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """weights/ as shipped, plus an older model in weights/older/."""
    root = tmp_path_factory.mktemp("weights")
    for item in default_weights_dir().iterdir():
        if item.is_file():
            shutil.copy(item, root / item.name)
    older_id = _small_model(root / "older", seed=1)
    return root, older_id


def test_the_library_lists_the_default_and_its_subfolders(library, tmp_path):
    root, older_id = library
    (root / "not-a-model").mkdir(exist_ok=True)
    (root / "broken").mkdir(exist_ok=True)
    (root / "broken" / "model.json").write_text("{not json")
    found = model_library(root)
    assert found[older_id] == root / "older"
    assert Codec(root, device="cpu").weights.model_id in found
    assert len(found) == 2
    assert model_library(tmp_path / "nowhere") == {}


def test_a_file_of_an_older_model_decodes_with_the_new_default(library, photo_crop):
    root, older_id = library
    older = Codec(root / "older", device="cpu")
    data = older.encode(photo_crop, quality=2)
    assert parse(data).model_id == older_id
    default = Codec(root, device="cpu")
    assert default.parse(data).stage_count == 2
    got = np.asarray(default.decode(data))
    assert np.array_equal(got, np.asarray(older.decode(data)))
    assert got.shape == photo_crop.shape


def test_mixed_models_decode_in_order(library, photo_crop):
    root, _ = library
    default = Codec(root, device="cpu")
    older = Codec(root / "older", device="cpu")
    files = [default.encode(photo_crop, quality=1), older.encode(photo_crop, quality=3),
             default.encode(photo_crop, quality=4)]
    mixed = default.decode_many(files)
    alone = [default.decode(files[0]), older.decode(files[1]), default.decode(files[2])]
    for a, b in zip(mixed, alone):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_the_default_model_decodes_from_an_older_models_codec(library, photo_crop, codec):
    """A codec made from a subfolder also knows the shipped default."""
    root, _ = library
    data = codec.encode(photo_crop, quality=3)
    assert np.array_equal(np.asarray(Codec(root / "older", device="cpu").decode(data)),
                          np.asarray(codec.decode(data)))


def test_a_model_that_is_not_installed_is_named(tmp_path, photo_crop, codec):
    _small_model(tmp_path / "stranger", seed=2)
    stranger = Codec(tmp_path / "stranger", device="cpu")
    data = stranger.encode(photo_crop, quality=1)
    with pytest.raises(FormatError, match=f"written by model {stranger.model_id}, which is not installed"):
        codec.decode(data)


def test_info_says_whether_the_files_model_is_installed(library, photo_crop, monkeypatch):
    from pathlib import Path
    import aecodec
    import aecodec.card
    old = (Path(__file__).parent / "data" / "model-cb289bc174396552.aec").read_bytes()
    d = aecodec.info(old)
    assert (d["model_installed"], d["default_model"], d["quality"]) == (False, False, None)
    root, _ = library
    data = Codec(root / "older", device="cpu").encode(photo_crop, quality=2)
    monkeypatch.setattr(aecodec.card, "default_weights_dir", lambda: root)
    d = aecodec.info(data)
    assert (d["model_installed"], d["default_model"], d["quality"]) == (True, False, 2)


def test_info_and_compress_know_the_quality_of_the_weights_in_use(library, photo_crop, tmp_path):
    """``--weights`` makes that folder's models installed for ``info`` as for decoding,
    so the quality of a file it wrote is named rather than taken for a budget fit."""
    import json
    from click.testing import CliRunner
    from PIL import Image
    from aecodec.cli import main
    root, _ = library
    older = str(root / "older")
    png, out = tmp_path / "a.png", tmp_path / "a.aec"
    Image.fromarray(photo_crop).save(png)
    r = CliRunner().invoke(main, ["compress", str(png), "-q", "2", "--weights", older, "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "q2" in r.output and "budget" not in r.output
    plain = json.loads(CliRunner().invoke(main, ["info", str(out), "--json"]).output)
    assert (plain["model_installed"], plain["quality"]) == (False, None)
    r = CliRunner().invoke(main, ["info", str(out), "--json", "--weights", older])
    d = json.loads(r.output)
    assert (d["model_installed"], d["default_model"], d["quality"]) == (True, False, 2)
    r = CliRunner().invoke(main, ["info", str(out), "--weights", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "does not exist" in r.output
