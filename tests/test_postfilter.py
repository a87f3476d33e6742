"""The post-filter: integer arithmetic, exact on any path, and how files name it."""
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load, save

from aecodec import postfilter
from aecodec.errors import WeightsError
from aecodec.postfilter import Layer, PostFilter


def random_filter(seed: int, channels=(3, 6, 5, 3), classes=4, strength=1.0) -> PostFilter:
    """Weights as large as ``check_exact`` allows times ``strength``."""
    g = torch.Generator().manual_seed(seed)
    layers = []
    for i, (cin, cout) in enumerate(zip(channels, channels[1:])):
        last = i + 2 == len(channels)
        shift = 9 if not last else 7
        limit = int(strength * (postfilter.FLOAT32_EXACT - (255 << shift) - (1 << 20)) / 255 / (cin * 9))
        signs = torch.randint(0, 2, (cout, cin, 3, 3), generator=g) * 2 - 1
        weight = signs * (limit - torch.randint(0, limit // 20 + 1, (cout, cin, 3, 3), generator=g))
        bias_shape = (classes, cout) if i == 0 else (cout,)
        bias = torch.randint(-(1 << 19), 1 << 19, bias_shape, generator=g)
        layers.append(Layer(weight, bias, shift))
    return PostFilter(tuple(layers), bytes(8))


def reference(filt: PostFilter, rgb: np.ndarray, cls: int) -> np.ndarray:
    """The arithmetic of postfilter's docstring in int64 numpy, independent of torch."""
    pixels = rgb.astype(np.int64).transpose(2, 0, 1)
    a = pixels
    for i, layer in enumerate(filt.layers):
        w = layer.weight.numpy()
        b = (layer.bias[cls] if i == 0 else layer.bias).numpy()
        padded = np.pad(a, ((0, 0), (1, 1), (1, 1)))
        h, wd = a.shape[1:]
        acc = np.zeros((w.shape[0], h, wd), np.int64) + b[:, None, None]
        for dy in range(3):
            for dx in range(3):
                acc += np.einsum("oc,chw->ohw", w[:, :, dy, dx], padded[:, dy:dy + h, dx:dx + wd])
        if i + 1 < len(filt.layers):
            a = np.clip(acc >> layer.shift, 0, 255)
        else:
            a = np.clip(((pixels << layer.shift) + acc) >> layer.shift, 0, 255)
    return a.transpose(1, 2, 0).astype(np.uint8)


def test_torch_float32_equals_integer_reference():
    """Weights at the bound ``check_exact`` allows: float32 sums must still be exact."""
    filt = random_filter(0)
    postfilter.check_exact(filt.layers)
    rgb = np.random.default_rng(1).integers(0, 256, (37, 29, 3), dtype=np.uint8)
    for cls in range(filt.classes):
        assert np.array_equal(filt.apply(rgb, cls), reference(filt, rgb, cls))


def test_float64_and_tiles_agree(monkeypatch):
    filt = random_filter(2)
    rgb = np.random.default_rng(3).integers(0, 256, (70, 41, 3), dtype=np.uint8)
    whole = filt.apply(rgb, 1)
    assert rgb.shape[0] <= postfilter.CPU_TILE                      # one tile
    monkeypatch.setattr(postfilter, "CPU_TILE", 16)                 # 16x16 tiles with halos, partial at the edges
    assert np.array_equal(filt.apply(rgb, 1), whole)
    weights = [(layer.weight.double(), (layer.bias[1] if i == 0 else layer.bias).double(), 2.0 ** -layer.shift)
               for i, layer in enumerate(filt.layers)]
    as_float64 = filt._run(torch.from_numpy(rgb), weights).numpy()
    assert np.array_equal(as_float64, whole)
    rgb.flags.writeable = False                                     # as np.asarray of a PIL image gives
    with warnings.catch_warnings():
        warnings.simplefilter("error")                              # torch warns of read-only arrays
        assert np.array_equal(filt.apply(rgb, 1), whole)


def test_too_large_weights_are_refused():
    filt = random_filter(4, strength=1.3)
    with pytest.raises(WeightsError, match="2\\*\\*24"):
        postfilter.check_exact(filt.layers)


def test_class_out_of_range_is_refused():
    with pytest.raises(ValueError, match="class 4"):
        random_filter(5).apply(np.zeros((4, 4, 3), np.uint8), 4)


def test_from_tensors_round_trips_and_checks_shapes():
    """What a safetensors file holds (``tensors_of``) gives the same filter back; the
    file's hash is the model card's business (tests/test_weights.py)."""
    filt = random_filter(6)
    tensors = load(save(postfilter.tensors_of(filt.layers)))
    loaded = postfilter.from_tensors(tensors, b"\7" * 8)
    assert loaded.filter_id == b"\7" * 8
    rgb = np.random.default_rng(7).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    assert np.array_equal(loaded.apply(rgb, 2), filt.apply(rgb, 2))
    bad = list(filt.layers)
    bad[1] = replace(bad[1], weight=bad[1].weight[:, :4])
    with pytest.raises(WeightsError, match="layer 1"):
        postfilter.from_tensors(postfilter.tensors_of(bad), bytes(8))
    del tensors["layer2.shift"]
    with pytest.raises(WeightsError, match="lacks"):
        postfilter.from_tensors(tensors, bytes(8))


# -- in the codec, with the shipped weights' filter ---------------------------------

def _held_reference(codec, f, unfiltered):
    """What a version 5, 6, 9 or 10 decoder makes of a file: the filter's output held to
    the intervals of the detail layer's levels (their steps adapted to the base image in
    versions 9 and 10) around the base image (its stages alone)."""
    from aecodec import detail
    filt = codec.weights.postfilter_for(f.filter_id)
    base = codec.decode_pixels(f.without_detail().to_bytes()).rgb
    cells = detail.activity(codec.entropy_decode(f.stages, f.height, f.width))
    payload, layout = f.unpacked_detail()
    levels = detail.decode_levels(payload, (f.height, f.width), cells, layout)
    if f.adaptive:
        levels = levels.adapted(detail.Adaptive.from_bytes(f.adaptive), base)
    return detail.constrain(filt.apply(unfiltered, f.filter_class), base, levels,
                            detail.Intervals.from_bytes(f.intervals))


def _at_coded_size(f):
    """A version 7-10 file as the unscaled file of its coded image (the same stages,
    detail layer, packed as it is, and filter): what its decoder makes before scaling up."""
    from dataclasses import replace
    if not f.scaled:
        return f
    height, width = f.coded_size
    return replace(f.without_upfilter(), width=width, height=height, coded_width=0, coded_height=0)


def test_files_name_the_filter_and_decode_through_it(codec, photo_crop):
    """Stage-only files run the filter (version 4); files with a detail layer also hold
    its output to the intervals the card gives (version 10, with the detail layer packed
    and its steps adapted); a file coded at a reduced size does either, then scales up,
    then runs the filter after scaling up the card names for its rung (version 8
    without a detail layer, 10 with one)."""
    from aecodec import resample
    from aecodec.format import parse
    filt = codec.weights.postfilter
    assert filt is not None, "the shipped model card names a post-filter"
    assert len(filt.intervals) == 3, "the shipped post-filter's output is held to intervals"
    scaled = [q for q, rung in enumerate(codec.ladder, 1) if rung.scale > 1]
    assert scaled, "the shipped ladder codes its lowest qualities at a reduced size"
    cases = [(rung, codec.encode(photo_crop, q)) for q, rung in enumerate(codec.ladder, 1)
             if q in (scaled[0], scaled[-1], 9)] + [((3, 0.0, 1.0), codec.encode_at(photo_crop, 3))]
    for (stages, step, scale), data in cases:
        f = parse(data)
        cls = filt.class_for(stages, step)
        assert (f.version, f.filter_id, f.filter_class) == (11, filt.filter_id, cls)     # the card's zero tables
        up = codec.weights.upfilter
        assert (f.upfilter_id, f.upfilter_class) == ((up.filter_id, up.class_for(stages, step, scale))
                                                     if scale > 1 else (b"", 0))
        assert f.intervals == (filt.intervals if step else b"")
        coded = _at_coded_size(f)
        unfiltered = codec.decode_pixels(coded.without_filter().to_bytes()).rgb     # the same file unfiltered
        want = _held_reference(codec, coded, unfiltered) if step else filt.apply(unfiltered, cls)
        if step:
            assert not np.array_equal(want, filt.apply(unfiltered, cls))       # the intervals did something
        if f.scaled:
            want = up.apply(resample.upscale(want, f.height, f.width), f.upfilter_class)
        assert np.array_equal(codec.decode_pixels(data).rgb, want)


def test_the_filter_brings_the_decoded_photo_closer(codec, photo_crop):
    """A real photo the filter was not trained on (scikit-image's astronaut)."""
    from aecodec.format import parse
    from conftest import psnr
    for q in (3, 7, 11):
        data = codec.encode(photo_crop, q)
        plain = parse(data).without_filter().to_bytes()
        assert psnr(photo_crop, codec.decode_pixels(data).rgb) > psnr(photo_crop, codec.decode_pixels(plain).rgb)


def test_unknown_filters_and_classes_are_refused(codec, photo_crop):
    from aecodec.format import FormatError, parse
    f = parse(codec.encode(photo_crop, 6))
    with pytest.raises(FormatError, match="post-filter 0101010101010101"):
        codec.decode(replace(f, filter_id=b"\1" * 8).to_bytes())
    with pytest.raises(FormatError, match="class 200"):
        codec.decode(replace(f, filter_class=200).to_bytes())


def test_unknown_filters_after_scaling_up_are_refused(codec, photo_crop):
    from aecodec.format import FormatError, parse
    f = parse(codec.encode(photo_crop, 1))
    assert f.upfilter_id == codec.weights.upfilter.filter_id
    with pytest.raises(FormatError, match="needs filter after scaling up 0202020202020202"):
        codec.decode(replace(f, upfilter_id=b"\2" * 8).to_bytes())
    classes = codec.weights.upfilter.classes
    with pytest.raises(FormatError, match=f"filter after scaling up class {classes} is outside 0..{classes - 1}"):
        codec.decode(replace(f, upfilter_class=classes).to_bytes())


def test_off_ladder_files_take_the_nearest_class(codec):
    """Classes follow the (stages, step) they were trained on (the card's "classes"),
    so a new ladder cannot give a file the class of another kind of file."""
    class_for = codec.weights.postfilter.class_for
    ladder = [(n, st) for n, st, _ in codec.weights.postfilter.class_rungs]
    assert [class_for(s, st) for s, st in ladder] == list(range(len(ladder)))
    n, st = next((n, st) for n, st in ladder if st and (n + 1, st) not in ladder)
    assert class_for(n + 1, st) == ladder.index((n, st))        # same step, one stage more
    detail = [(i, st) for i, (_, st) in enumerate(ladder) if st]
    (i0, s0), (i1, s1) = detail[0], detail[1]                 # neighbouring detail steps
    assert class_for(4, s0 * 0.99) == i0 and class_for(4, (s0 * s1) ** 0.5 * 0.99) == i1
    assert class_for(4, 10_000) == max(detail, key=lambda d: d[1])[0]     # the coarsest step trained
    assert class_for(9, 0.0) == max(i for i, (_, st) in enumerate(ladder) if not st)
    assert class_for(3, 54.0, scale=1.5) is None             # no class trained on rungs at that scale


def test_filters_after_scaling_up_pick_classes_at_their_scale(codec):
    """The card's "upfilter" classes are (stages, step, scale): a rung takes the class of
    its own scale, the nearest step there, and none at a scale no class was trained on."""
    up = codec.weights.upfilter
    rungs = up.class_rungs
    assert all(rung.scale > 1 for rung in rungs)
    assert [up.class_for(*rung) for rung in rungs] == list(range(len(rungs)))
    at_two = [i for i, rung in enumerate(rungs) if rung.scale == 2 and rung.step]
    assert up.class_for(3, 70.0, 2.0) == at_two[0]              # a budget's step between rungs
    assert up.class_for(3, 54.0, 1.75) is None


def test_earlier_filters_refuse_to_pick_a_class(codec):
    """An earlier release's filter only decodes the files that name it: the card keeps
    no class rungs for it, and asking it for a class says so."""
    earlier = codec.weights.earlier_postfilters
    assert earlier and all(not f.class_rungs for f in earlier)
    with pytest.raises(ValueError, match="no class rungs"):
        earlier[0].class_for(4, 18.0)


def test_training_exports_an_exact_filter():
    """``fit`` ends in an integer filter that passes ``check_exact`` (its last layer's
    shift included, which tiny nets with fine activation grids used to overflow), with
    the float network's held-out gains in its record."""
    from aecodec.train.postfilter import Pairs, fit
    rng = np.random.default_rng(0)
    orig = rng.integers(0, 256, (6, 256, 256, 3), dtype=np.uint8)
    noisy = orig[:, None].astype(int) + rng.integers(-8, 9, (6, 2, 256, 256, 3))
    pairs = Pairs(orig, np.clip(noisy, 0, 255).astype(np.uint8), held_out=2, seed=0)
    filt, record = fit(pairs, 4, 3, steps=20, qat_steps=10, lr=1e-3, qat_lr=1e-4, batch=4, patch=32,
                       log=lambda *a: None)
    assert filt.classes == 2 and len(filt.layers) == 3
    assert len(record["float_held_out_gain_db"]) == 2
    filt, record = fit(pairs, 4, 3, steps=20, qat_steps=0, lr=1e-3, batch=4, patch=32,
                       log=lambda *a: None)        # no integer-aware steps: rounded as it is
    assert len(filt.layers) == 3 and record["history"][-1]["step"] == 20


def test_batches_carry_each_blocks_gain_turned_with_its_pixels():
    """Pairs whose files adapt their steps (format version 9) give each patch its
    blocks' gains, from the base of the whole crop (what its decoder used), and a turned
    patch's gains are turned with it: each block keeps the gain of its base pixels."""
    from aecodec import detail
    from aecodec.train.postfilter import CROP, Pairs
    rng = np.random.default_rng(4)
    blocks = CROP // 8
    spread = rng.uniform(0, 40, (blocks, blocks)).repeat(8, 0).repeat(8, 1)[..., None]
    base = np.clip(128 + rng.normal(0, 1, (2, CROP, CROP, 3)) * spread, 0, 255).astype(np.uint8)
    dec = np.stack([base, np.clip(base.astype(int) + 3, 0, 255).astype(np.uint8)], axis=1)   # class 1: detail
    adaptive = detail.Adaptive(64, 58)
    pairs = Pairs(base, dec, held_out=1, seed=0, augment=True, base_classes=[-1, 0], adaptive=adaptive)
    gain_of = dict(zip(_block_spreads(base[0]), adaptive.gains(base[0])))     # the one training crop
    for _ in range(4):
        batch = pairs.batch(16, 32)
        assert batch.gains.shape == (16, 1, 4, 4)
        for k in np.flatnonzero(batch.classes.numpy() == 1):
            patch = (batch.base[k].permute(1, 2, 0) * 256).round().numpy().astype(np.uint8)
            want = [gain_of[v] / 4096 for v in _block_spreads(patch)]
            assert np.allclose(batch.gains[k, 0].numpy().ravel(), want)
    plain = Pairs(base, dec, held_out=1, seed=0, base_classes=[-1, 0])           # pairs of earlier releases
    assert plain.batch(4, 32).gains is None


def _block_spreads(image):
    """Each 8x8 block's 64 x sum of squares - square of sum of its integer luma, row-major."""
    luma = image.astype(np.int64) @ np.array([77, 150, 29])
    n = luma.shape[0] // 8
    blocks = luma.reshape(n, 8, n, 8).transpose(0, 2, 1, 3).reshape(n * n, 64)
    return (64 * (blocks ** 2).sum(1) - blocks.sum(1) ** 2).tolist()


def test_augmented_batches_turn_both_images_of_a_pair_alike():
    """With ``augment`` every patch and its decode are turned by the same one of the
    square's 8 symmetries, and all 8 occur; without it patches are as cut."""
    from aecodec.train.postfilter import CROP, Pairs, _symmetry
    yx = np.indices((CROP, CROP)).transpose(1, 2, 0)               # each pixel holds its own (y, x)
    orig = np.stack([np.dstack([yx, np.full((CROP, CROP), k)]) for k in range(3)]).astype(np.uint8)
    dec = np.stack([orig, 255 - orig], axis=1)                     # a decode that is a known function of its crop
    for augment in (False, True):
        pairs, seen = Pairs(orig, dec, held_out=1, seed=0, augment=augment), set()
        for _ in range(8):
            d, o, c = pairs.batch(16, 8)[:3]
            for k in range(16):
                inverted = (c[k] == 1).item()             # class 1 decodes to 255 - the crop
                assert torch.equal(d[k], (255 - o[k] * 256) / 256 if inverted else o[k])
                patch = (o[k].permute(1, 2, 0) * 256).round().numpy().astype(np.uint8)
                seen.update(t for t in range(8) if _cut_from(_symmetry(orig[patch[0, 0, 2]], t), patch))
        assert seen == (set(range(8)) if augment else {0})


def _cut_from(image: np.ndarray, patch: np.ndarray) -> bool:
    """Whether ``patch`` is a window of ``image`` (whose pixels are all distinct)."""
    (y, x), = np.argwhere((image == patch[0, 0]).all(axis=2))
    return np.array_equal(image[y:y + len(patch), x:x + len(patch)], patch)


def test_training_starts_from_the_shipped_filter(codec, photo_crop):
    """``FloatFilter.from_integer`` computes what the integer filter does, up to the
    rounding (and clipping) of its hidden activations, and the identity layers it
    inserts to deepen it change nothing; a new class starts from its nearest trained
    one."""
    from aecodec.format import parse
    from aecodec.train.postfilter import FloatFilter, _float_filtered
    filt = codec.weights.postfilter
    rungs = [*filt.class_rungs, (3, 54.0)]
    shallow = FloatFilter.from_integer(filt, len(filt.layers), rungs)
    deep = FloatFilter.from_integer(filt, len(filt.layers) + 2, rungs)
    for q in (1, 9):                          # what the filter sees: the codec's own decodes
        f = parse(codec.encode(photo_crop, q))
        decoded = codec.decode_pixels(f.without_filter().to_bytes()).rgb
        integer = filt.apply(decoded, f.filter_class).astype(int)
        twin = _float_filtered(shallow, decoded, f.filter_class).astype(int)
        # the hidden layers' rounding: 0.21 levels on average at quality 1 for the filter of 2026-12-05 night
        assert np.abs(twin - integer).mean() < 0.25 and (np.abs(twin - integer) > 1).mean() < 0.01
        assert np.array_equal(_float_filtered(deep, decoded, f.filter_class), twin)
    assert torch.equal(deep.class_bias.weight[-1], deep.class_bias.weight[filt.class_for(3, 54.0)])
    with pytest.raises(ValueError, match="cannot grow"):
        FloatFilter.from_integer(filt, len(filt.layers) - 1, rungs)


def test_fit_command_grows_the_shipped_filter(codec, tmp_path):
    """``fit --init-from`` records where it started, and refuses to shrink a filter
    with a one-line usage error."""
    import json

    from click.testing import CliRunner

    from aecodec.card import default_weights_dir
    from aecodec.train.postfilter import main
    rng = np.random.default_rng(1)
    orig = rng.integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
    dec = np.clip(orig[:, None].astype(int) + rng.integers(-6, 7, (4, 2, 256, 256, 3)), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "pairs.npz", orig=orig, dec=dec, ladder=np.array([(2, 0.0), (4, 27.0)]))
    args = ["fit", str(tmp_path / "run"), str(tmp_path / "pairs.npz"), "--init-from", str(default_weights_dir()),
            "--steps", "2", "--qat-steps", "1", "--held-out", "1", "--threads", "1"]
    shipped = codec.weights.postfilter
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(main, [*args, "--layers", str(len(shipped.layers) + 1)])
    finally:
        torch.set_num_threads(threads)           # the command sets them for its process
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "postfilter.json").read_text())
    assert record["init_from"] == shipped.filter_id.hex()
    assert record["classes"] == [[2, 0.0], [4, 27.0]] and record["layers"] == len(shipped.layers) + 1
    result = CliRunner().invoke(main, [*args, "--layers", str(len(shipped.layers) - 1)])
    assert result.exit_code == 2 and "cannot grow" in result.output


def test_fit_after_the_decoder_starts_from_the_filter_after_scaling_up(codec, tmp_path):
    """Pairs made ``--after-decoder`` train on from the card's filter after scaling up,
    each new class from that filter's nearest class at the nearest scale it has (the
    post-filter's: full size)."""
    import json

    from click.testing import CliRunner

    from aecodec.card import Rung, default_weights_dir
    from aecodec.train.postfilter import FloatFilter, _start_class, main
    up = codec.weights.upfilter
    rungs = [*up.class_rungs, (3, 40.0, 1.25)]
    model = FloatFilter.from_integer(up, len(up.layers), rungs)
    assert torch.equal(model.class_bias.weight[-1], model.class_bias.weight[up.class_for(3, 40.0, 1.25)])
    assert [_start_class(up, Rung.of(r)) for r in up.class_rungs] == list(range(up.classes))
    post = codec.weights.postfilter
    assert _start_class(up, Rung(3, 40.0, 1.125)) == up.class_for(3, 40.0, 1.25)    # a scale it has no class for
    assert _start_class(up, Rung(2, 0.0, 3.0)) == up.class_for(2, 0.0, 2.0)
    assert _start_class(post, Rung(3, 44.0, 1.25)) == post.class_for(3, 44.0)     # full size: its only scale

    rng = np.random.default_rng(1)
    orig = rng.integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
    dec = np.clip(orig[:, None].astype(int) + rng.integers(-6, 7, (4, 2, 256, 256, 3)), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "pairs.npz", orig=orig, dec=dec, ladder=np.array([(3, 54.0, 1.25), (3, 44.0, 1.25)]),
             after_decoder=True)
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(main, ["fit", str(tmp_path / "run"), str(tmp_path / "pairs.npz"), "--init-from",
                                           str(default_weights_dir()), "--layers", str(len(up.layers)),
                                           "--steps", "2", "--qat-steps", "1", "--held-out", "1", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "postfilter.json").read_text())
    assert record["init_from"] == up.filter_id.hex() and record["after_decoder"]
    assert record["classes"] == [[3, 54.0, 1.25], [3, 44.0, 1.25]]


def test_fit_through_intervals_installs_a_filter_held_to_them(codec, tmp_path):
    """``fit --intervals`` records them, ``install`` puts them in the card beside the
    filter (the one it replaces kept as an earlier filter), and the encoder then writes
    files that hold the filter's output to them; pairs without a base class
    for a detail class are refused with a usage error."""
    import json
    import shutil

    from click.testing import CliRunner

    from aecodec.card import default_weights_dir
    from aecodec.codec import Codec
    from aecodec.format import parse
    from aecodec.train.postfilter import main
    rng = np.random.default_rng(2)
    orig = rng.integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)
    dec = np.clip(orig[:, None].astype(int) + rng.integers(-6, 7, (3, 2, 256, 256, 3)), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "pairs.npz", orig=orig, dec=dec, ladder=np.array([(4, 0.0), (4, 27.0)]))
    np.savez(tmp_path / "orphan.npz", orig=orig, dec=dec, ladder=np.array([(3, 0.0), (4, 27.0)]))
    args = ["--channels", "4", "--layers", "3", "--steps", "2", "--qat-steps", "1", "--held-out", "1",
            "--threads", "1", "--intervals", "32,8,19"]
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(main, ["fit", str(tmp_path / "run"), str(tmp_path / "pairs.npz"), *args])
        orphan = CliRunner().invoke(main, ["fit", str(tmp_path / "o"), str(tmp_path / "orphan.npz"), *args])
    finally:
        torch.set_num_threads(threads)           # the command sets them for its process
    assert result.exit_code == 0, result.output
    assert orphan.exit_code == 2 and "without a detail layer" in orphan.output
    assert json.loads((tmp_path / "run" / "postfilter.json").read_text())["intervals"] == [32, 8, 19]
    weights = tmp_path / "weights"
    shutil.copytree(default_weights_dir(), weights)
    result = CliRunner().invoke(main, ["install", str(weights), str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    card = json.loads((weights / "model.json").read_text())
    assert card["postfilter"]["intervals"] == [32, 8, 19] and card["format_version"] == 11    # zero tables
    assert codec.weights.postfilter.filter_id.hex() in [e["filter_id"] for e in card["earlier_postfilters"]]
    mine = Codec(str(weights), device="cpu")
    f = parse(mine.encode_at(orig[0, :64, :96], 4, 27.0))
    assert (f.version, f.intervals) == (11, bytes([32, 8, 19]))


def test_training_holds_the_output_as_the_decoder_does(codec, photo_crop):
    """``Constraint`` (torch, levels recovered from the decode and its base, steps
    adapted to each block) computes what ``detail.constrain`` does with the decoded
    levels, and its gradient flows."""
    from dataclasses import replace
    from aecodec import detail
    from aecodec.format import parse
    from aecodec.train.postfilter import Batch, Constraint, _to_input, base_classes_of
    stages, step = 4, 18.0
    f = replace(parse(codec.encode_at(photo_crop, stages, step)), intervals=b"\x26\x0d\x1a")
    unfiltered = codec.decode_pixels(f.without_filter().to_bytes()).rgb
    base = codec.decode_pixels(f.without_detail().to_bytes()).rgb
    want = codec.decode_pixels(f.to_bytes()).rgb
    rungs = [(stages, 0.0), (stages, step)]
    assert base_classes_of(rungs) == [-1, 0]
    constraint = Constraint(rungs, detail.Intervals.from_bytes(f.intervals))
    filtered = _to_input(codec.weights.postfilter_for(f.filter_id).apply(unfiltered, f.filter_class)[None])
    filtered.requires_grad_(True)
    adaptive = detail.Adaptive.from_bytes(f.adaptive)          # version 9: every block its own step
    block_gains = adaptive.gains(base).reshape(1, 1, *(n // 8 for n in base.shape[:2])) / detail.UNIT_GAIN
    held = constraint(filtered, Batch(_to_input(unfiltered[None]), None, torch.tensor([1]), _to_input(base[None]),
                                      torch.tensor(block_gains, dtype=torch.float32)))
    got = (held[0] * 256).round().clamp(0, 255).permute(1, 2, 0).detach().numpy().astype(np.uint8)
    assert np.mean(got == want) > 0.999 and np.abs(got.astype(int) - want).max() <= 1
    held.sum().backward()
    assert filtered.grad.abs().sum() > 0
    stage_only = constraint(filtered, Batch(_to_input(base[None]), None, torch.tensor([0]), _to_input(base[None])))
    assert torch.equal(stage_only, filtered)          # no detail layer: nothing to hold to


def test_pairs_after_the_decoder(codec, tmp_path):
    """``pairs --after-decoder`` keeps what the decoder makes of a scaled rung (its
    filter and scaling up included, not the filter after scaling up it trains); without
    it, the rung at full size decoded without its filter (the post-filter runs before
    any scaling up). ``install`` makes a filter trained on such pairs the card's
    "upfilter", and refuses one whose classes are not rungs at a reduced size."""
    import json
    import shutil
    from click.testing import CliRunner
    from PIL import Image
    from aecodec.card import default_weights_dir
    from aecodec.codec import Codec
    from aecodec.format import parse
    from aecodec.train.postfilter import main, make_pairs
    from conftest import sample_photo
    Image.fromarray(sample_photo("coffee")).save(tmp_path / "coffee.png")
    rung = (3, 54.0, 1.5)
    quiet = dict(log=lambda *_: None)
    orig, after = make_pairs(codec, [tmp_path / "coffee.png"], 1, 0, [rung], after_decoder=True, **quiet)
    orig2, plain = make_pairs(codec, [tmp_path / "coffee.png"], 1, 0, [rung], **quiet)
    data = parse(codec.encode_at(orig[0], *rung))
    assert (orig == orig2).all() and after.shape == (1, 1, 256, 256, 3) and data.upfilter_id
    assert (after[0, 0] == codec.decode_pixels(data.without_upfilter().to_bytes()).rgb).all()
    assert not (after[0, 0] == codec.decode_pixels(data.to_bytes()).rgb).all()
    full_size = parse(codec.encode_at(orig[0], 3, 54.0)).without_filter().to_bytes()   # as the filter sees it
    assert (plain[0, 0] == codec.decode_pixels(full_size).rgb).all()

    weights, run = tmp_path / "weights", tmp_path / "run"
    shutil.copytree(default_weights_dir(), weights)
    card = json.loads((weights / "model.json").read_text())
    shipped = card.pop("upfilter")
    (weights / "model.json").write_text(json.dumps(card))
    run.mkdir()
    shutil.copy(weights / shipped["file"], run / "postfilter.safetensors")
    record = {"after_decoder": True, "classes": [list(r) for r in codec.weights.upfilter.class_rungs]}
    (run / "postfilter.json").write_text(json.dumps({**record, "classes": [[3, 54.0]] * len(record["classes"])}))
    result = CliRunner().invoke(main, ["install", str(weights), str(run)])
    assert result.exit_code == 2 and "reduced size" in result.output
    (run / "postfilter.json").write_text(json.dumps(record))
    result = CliRunner().invoke(main, ["install", str(weights), str(run)])
    assert result.exit_code == 0 and "after scaling up" in result.output, result.output
    card = json.loads((weights / "model.json").read_text())
    assert card["upfilter"]["sha256"] == shipped["sha256"] and card["format_version"] == 11
    assert Codec(str(weights), device="cpu").encode_at(orig[0, :64, :96], *rung) == \
        codec.encode_at(orig[0, :64, :96], *rung)


def test_a_filter_without_intervals_still_writes_adaptive_steps(tmp_path, photo_crop):
    """A card whose post-filter gives no intervals (as before format version 5): files
    with a detail layer are version 11 (10 without the card's zero tables) with zero
    intervals, and decode through the filter unheld."""
    import json
    import shutil
    from aecodec.card import default_weights_dir
    from aecodec.codec import Codec
    from aecodec.format import parse
    weights = tmp_path / "weights"
    shutil.copytree(default_weights_dir(), weights)
    card = json.loads((weights / "model.json").read_text())
    del card["postfilter"]["intervals"]
    (weights / "model.json").write_text(json.dumps(card))
    mine = Codec(str(weights), device="cpu")
    for quality in (3, 7):                           # scaled and at full size
        data = mine.encode(photo_crop, quality)
        f = parse(data)
        assert (f.version, f.intervals, f.filter_id) == (11, b"", mine.weights.postfilter.filter_id)
        assert mine.decode_pixels(data).rgb.shape == photo_crop.shape
