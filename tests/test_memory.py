"""Memory grows with the image by a few bytes per pixel: the networks only ever see
one tile in float, and the detail layer works in bands of rows (issue 16, class 1).
Peak RSS itself is measured in benchmarks/ (python -m aecodec.bench.memory)."""
import tracemalloc

import numpy as np

from aecodec import detail
from aecodec.codec import Codec


def _noisy_pair(h, w):
    rng = np.random.default_rng(0)
    orig = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    base = np.clip(orig.astype(np.int16) + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)
    return orig, base, np.zeros((-(-h // 16), -(-w // 16)), np.int64)


def _detail_peaks(h, w):
    """Peak bytes numpy allocates while the detail layer encodes and decodes (in place)."""
    orig, base, cells = _noisy_pair(h, w)
    tracemalloc.start()
    try:
        payload = detail.encode(orig, base, 2.0, cells)
        encode_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        out = detail.decode(payload, base, cells, out=base)
        decode_peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert out is base
    return encode_peak, decode_peak


def test_detail_layer_memory_grows_by_a_few_bytes_per_pixel():
    # Noise at a fine step codes every class at about 14 bits per pixel: the worst case.
    # What grows with the image is then the int16 levels (6 bytes per pixel) and the
    # payload itself; the float transforms stay within a band of rows.
    _detail_peaks(64, 64)                                  # table caches filled
    small, large = _detail_peaks(256, 384), _detail_peaks(768, 1152)
    pixels = 768 * 1152 - 256 * 384
    encode_slope = (large[0] - small[0]) / pixels
    decode_slope = (large[1] - small[1]) / pixels
    assert encode_slope < 16 and decode_slope < 16, (encode_slope, decode_slope)


def test_networks_see_one_tile_at_a_time(photo_large):
    """No whole-image float array: the encoder gets tiles of 8-bit pixels, converted
    one at a time, and the decoder dequantizes each tile's latent on its own."""
    tile = 4
    codec = Codec(device="cpu", tile=tile)
    model = codec.model
    side = (tile + 2 * model.halo) * model.stride
    seen = {"encoder": [], "latent": []}
    encoder_forward = model.encoder.forward
    dequantize = model.quantizer.dequantize
    model.encoder.forward = lambda x: seen["encoder"].append(x.shape) or encoder_forward(x)
    model.quantizer.dequantize = lambda idx: seen["latent"].append(idx.shape) or dequantize(idx)
    data = codec.encode_at(photo_large, 5)       # no detail layer: the encoder runs no decoder
    codec.decode_pixels(data)
    h, w = model.cells(*photo_large.shape[:2])
    assert len(seen["encoder"]) == len(seen["latent"]) == -(-h // tile) * -(-w // tile)
    assert max(s[2] * s[3] for s in seen["encoder"]) <= side * side
    assert max(s[3] * s[4] for s in seen["latent"]) <= (tile + 2 * model.halo) ** 2


def test_post_filter_bands_change_no_pixel(codec, photo_large):
    """The exact decoder runs its full-resolution filter in bands of rows (less memory);
    exact sums make that the very same pixels as one piece, at any band size."""
    import torch
    from aecodec.model import exact

    indices = codec.indices([photo_large], 6)[0]
    idx = torch.from_numpy(indices[:, None])
    h, w = photo_large.shape[:2]
    assert h > exact.FILTER_BAND_ROWS + 2 * codec.synthesis.postfilter.row_halo      # banding is on
    banded = codec.model.decompress(idx, h, w, None, codec.synthesis)
    whole_decoder = exact.exact_copy(codec.model.decoder, torch.device("cpu"))
    del whole_decoder.postfilter.forward                      # the class's own forward: one piece
    one_piece = codec.model.decompress(idx, h, w, None, whole_decoder)
    thin_decoder = exact.exact_copy(codec.model.decoder, torch.device("cpu"))
    del thin_decoder.postfilter.forward
    exact.banded_rows(thin_decoder.postfilter, thin_decoder.postfilter.row_halo, rows=16)
    assert np.array_equal(banded, one_piece)
    assert np.array_equal(codec.model.decompress(idx, h, w, None, thin_decoder), one_piece)
