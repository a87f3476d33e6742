"""Weights: sha256 pinned by the model card, clear errors otherwise."""
import json
from pathlib import Path
import shutil

import pytest

from aecodec.weights import WeightsError, default_weights_dir, load_weights


@pytest.fixture
def weights_copy(tmp_path):
    dst = tmp_path / "w"
    shutil.copytree(default_weights_dir(), dst)
    return dst


def _blob(folder):
    return folder / json.loads((folder / "model.json").read_text())["file"]


def test_shipped_weights_load_and_match_card():
    w = load_weights()
    card = json.loads((default_weights_dir() / "model.json").read_text())
    assert w.model_id.hex() == card["model_id"] == card["sha256"][:16]


def test_tampered_weights(weights_copy):
    blob = _blob(weights_copy)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="tampered"):
        load_weights(weights_copy)


def test_truncated_weights(weights_copy):
    blob = _blob(weights_copy)
    blob.write_bytes(blob.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(weights_copy)


def test_missing_weights(weights_copy, tmp_path):
    _blob(weights_copy).unlink()
    with pytest.raises(WeightsError, match="missing"):
        load_weights(weights_copy)
    with pytest.raises(WeightsError, match="no model card"):
        load_weights(tmp_path / "empty")


def test_a_file_from_an_older_model_gets_a_clear_error():
    """Written by the 8-stage model cb289bc174396552, which the shipped weights replaced."""
    import aecodec
    data = (Path(__file__).parent / "data" / "model-cb289bc174396552.aec").read_bytes()
    with pytest.raises(aecodec.FormatError, match="written by model cb289bc174396552"):
        aecodec.decode(data)


@pytest.mark.parametrize("key,value", [("search_beam", 0), ("search_beam", 1.5), ("search_beam", 65), ("search_scale", 0)])
def test_bad_search_settings_in_the_card(weights_copy, key, value):
    card_path = weights_copy / "model.json"
    card = json.loads(card_path.read_text())
    card["config"][key] = value
    card_path.write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=key):
        load_weights(weights_copy)


def test_the_post_filter_is_pinned_by_the_card(weights_copy):
    card = json.loads((weights_copy / "model.json").read_text())
    w = load_weights(weights_copy)
    assert w.postfilter.filter_id.hex() == card["postfilter"]["filter_id"] == card["postfilter"]["sha256"][:16]
    _refused_when_tampered_or_missing(weights_copy, card["postfilter"]["file"], "post-filter")


def _refused_when_tampered_or_missing(folder, name, what):
    """A file the card pins, one bit flipped and then deleted: each load fails, naming it."""
    path = folder / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=f"{what} .* sha256"):
        load_weights(folder)
    path.unlink()
    with pytest.raises(WeightsError, match=f"{what} .* missing"):
        load_weights(folder)


def test_the_zero_tables_are_pinned_by_the_card(weights_copy):
    card = json.loads((weights_copy / "model.json").read_text())
    w = load_weights(weights_copy)
    assert w.zero_tables_id.hex() == card["zero_tables"]["sha256"][:16]
    assert card["zero_tables"]["file"] == f"zero-tables-{w.zero_tables_id.hex()}.safetensors"
    assert w.zero_tables.shape == (3, -(-w.config.groups // 4), 4320)       # the first 3 stages
    _refused_when_tampered_or_missing(weights_copy, card["zero_tables"]["file"], "zero tables")
    del card["zero_tables"]["sha256"]
    (weights_copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="unreadable zero_tables entry"):
        load_weights(weights_copy)


def test_installing_zero_tables_names_them_in_the_card(weights_copy, tmp_path):
    """``train.zero_tables install`` sums the parts' counts, and a card without zero
    tables writes version 10 files again."""
    import numpy as np
    from click.testing import CliRunner
    from aecodec.train.zero_tables import main
    w = load_weights(weights_copy)
    shape = (3, -(-w.config.groups // 4), 4320, 2)
    counts = np.zeros(shape, np.int64)
    counts[..., 1] = 3                                   # P(code 0) = 3.5 / 4 with the prior
    for k in range(2):
        np.savez_compressed(tmp_path / f"c{k}.npz", counts=counts, photos=5)
    result = CliRunner().invoke(main, ["install", str(weights_copy), str(tmp_path / "c0.npz"), str(tmp_path / "c1.npz")])
    assert result.exit_code == 0 and "from 10 photos" in result.output, result.output
    mine = load_weights(weights_copy)
    assert mine.zero_tables_id != w.zero_tables_id and (mine.zero_tables == round(6.5 / 7 * 2 ** 16)).all()
    card = json.loads((weights_copy / "model.json").read_text())
    assert card["format_version"] == 11 and card["zero_tables"]["fitted_on"] == 10


def test_zero_tables_are_counted_for_every_search_the_ladder_makes():
    from aecodec.card import Rung
    from aecodec.train.zero_tables import searches
    ladder = (Rung(2, 0, 2.0), Rung(3, 0, 2.0), Rung(3, 54, 2.0), Rung(3, 54, 1.5), Rung(3, 32), Rung(3, 12))
    assert searches(ladder, 11, (15, 0.25)) == [(1.0, 3), (1.0, 4), (1.5, 3), (2.0, 2), (2.0, 3)]
    assert searches(ladder, 11) == [(1.0, 3), (1.5, 3), (2.0, 2), (2.0, 3)]
    assert searches(ladder, 3, (15, 0.25)) == [(1.0, 3), (1.5, 3), (2.0, 2), (2.0, 3)]      # no 4th stage


def test_the_post_filter_entry_names_its_classes(weights_copy):
    card = json.loads((weights_copy / "model.json").read_text())
    n = len(card["postfilter"]["classes"])
    card["postfilter"]["classes"] = card["postfilter"]["classes"][:-1]
    (weights_copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=f"{n} classes, the model card names {n - 1}"):
        load_weights(weights_copy)
    del card["postfilter"]["classes"]
    (weights_copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="classes"):
        load_weights(weights_copy)


def test_installing_a_filter_keeps_the_one_it_replaces(weights_copy, tmp_path):
    """Files name their filter by id, so a release with a new filter must still read the
    files of the old one: ``install`` moves it to the card's "earlier_postfilters"."""
    import torch
    from click.testing import CliRunner
    from safetensors.torch import save
    from aecodec.postfilter import tensors_of
    from aecodec.train.postfilter import main
    from test_postfilter import random_filter
    old = load_weights(weights_copy).postfilter
    run = tmp_path / "run"
    run.mkdir()
    new = random_filter(0, classes=len(old.class_rungs))
    (run / "postfilter.safetensors").write_bytes(save(tensors_of(new.layers)))
    (run / "postfilter.json").write_text(json.dumps({"classes": [list(r) for r in old.class_rungs]}))
    result = CliRunner().invoke(main, ["install", str(weights_copy), str(run)])
    assert result.exit_code == 0, result.output
    w = load_weights(weights_copy)
    assert w.postfilter.filter_id not in (old.filter_id, b"")
    assert torch.equal(w.postfilter.layers[0].weight, new.layers[0].weight)
    kept = w.postfilter_for(old.filter_id)
    assert kept is not None and all(torch.equal(a.weight, b.weight) for a, b in zip(kept.layers, old.layers))
    assert w.postfilter_for(b"\1" * 8) is None
    import numpy as np
    from PIL import Image
    from aecodec.codec import Codec
    golden = Path(__file__).parent / "data" / "format-v4-q7.aec"       # names the replaced filter
    want = np.asarray(Image.open(golden.with_suffix(".decoded.png")))
    assert np.array_equal(Codec(weights_copy, device="cpu").decode_pixels(golden.read_bytes()).rgb, want)
    card = json.loads((weights_copy / "model.json").read_text())
    path = weights_copy / card["earlier_postfilters"][0]["file"]
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(WeightsError, match="post-filter .* sha256"):
        load_weights(weights_copy)


def test_a_card_states_the_newest_format_version_its_encoder_writes():
    """``format_version`` follows the ladder and the tables and filters the card names
    (the shipped card: zero tables, version 11; without them, detail layers whose steps
    adapt to each block, coded with near-frequency contexts: version 10)."""
    import copy
    from aecodec.card import default_card, newest_format_version
    card = copy.deepcopy(default_card())
    assert newest_format_version(card) == card["format_version"] == 11
    del card["zero_tables"]
    assert newest_format_version(card) == 10
    del card["postfilter"], card["upfilter"]
    assert newest_format_version(card) == 10
    card = copy.deepcopy(default_card())
    del card["zero_tables"]
    card["config"]["ladder"] = [[2, 0, 2], [3, 0]]
    assert newest_format_version(card) == 8
    del card["upfilter"]
    assert newest_format_version(card) == 7
    card["config"]["ladder"] = [[1, 0], [3, 0]]
    assert newest_format_version(card) == 4
    del card["postfilter"]
    assert newest_format_version(card) == 1 == newest_format_version({"config": {"stages": 11}})
