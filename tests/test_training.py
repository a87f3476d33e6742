"""Training-side model surgery: growing a trained model by more stages."""
import torch

import aecodec
from aecodec.codec import Codec
from aecodec.model.vqvae import ModelConfig, VQVAE


def _model(stages: int) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(ModelConfig(hidden=16, stages=stages))


def test_growing_keeps_trained_stages_and_transforms():
    small = _model(3)
    with torch.no_grad():
        small.quantizer.codebooks.normal_()
        small.decoder.blocks.gains.uniform_(0.5, 1.5)
    big = _model(5)
    assert big.load_with_fewer_stages(small.state_dict()) == 3
    assert torch.equal(big.quantizer.codebooks[:3], small.quantizer.codebooks)
    assert torch.equal(big.encoder.analysis.weight, small.encoder.analysis.weight)
    g_small, g_big = small.decoder.blocks.gains, big.decoder.blocks.gains
    assert torch.equal(g_big[:3], g_small[:3])
    assert torch.equal(g_big[5], g_small[3])                       # the unquantized level
    assert torch.allclose(g_big[3], g_small[2] + (g_small[3] - g_small[2]) / 3)


def test_new_stages_learn_the_residual_the_old_ones_leave():
    model = _model(4)
    x = torch.rand(4, 3, 64, 64)
    model.eval()
    y = model.encoder(x)
    model.quantizer.init_codebooks(y, start=0)
    before = model.quantizer.codebooks[:2].clone()
    model.quantizer.init_codebooks(y, start=2)
    assert torch.equal(model.quantizer.codebooks[:2], before)
    q = model.quantizer
    q.search_scale = 1e-6                         # plain nearest-codeword search
    err = [(q.dequantize(q.quantize(y, n)) - y).pow(2).mean() for n in (2, 4)]
    assert err[1] < 0.9 * err[0]


def test_fewer_stages_only():
    try:
        _model(2).load_with_fewer_stages(_model(3).state_dict())
    except ValueError as exc:
        assert "3 stages" in str(exc)
    else:
        raise AssertionError("loading more stages than the model has must fail")


def test_public_qualities_match_the_shipped_model():
    assert aecodec.QUALITIES == Codec(device="cpu").qualities
    assert aecodec.DEFAULT_QUALITY in aecodec.QUALITIES
