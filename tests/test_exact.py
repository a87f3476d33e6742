"""Exact synthesis computes its transposed convolutions as sub-pixel convolutions
(faster on a CPU): the pixels must be the very ones of the transposed form."""
import pytest
import torch
from torch import nn

from aecodec.model import exact
from aecodec.model.vqvae import VQVAE, ModelConfig


@pytest.mark.parametrize("kernel, stride, padding, output_padding",
                         [(5, 2, 2, 1), (3, 2, 1, 1), (4, 2, 1, 0), (3, 3, 0, 0)])
def test_subpixel_conv_is_the_transposed_conv_bit_for_bit(kernel, stride, padding, output_padding):
    torch.manual_seed(0)
    tconv = nn.ConvTranspose2d(6, 5, kernel, stride, padding, output_padding).double()
    with torch.no_grad():
        tconv.weight.copy_(torch.randn_like(tconv.weight).mul(2 ** 10).round() / 2 ** 12)
        tconv.bias.copy_(torch.randn_like(tconv.bias).mul(2 ** 20).round() / 2 ** 22)
    x = torch.randn(2, 6, 7, 9, dtype=torch.float64).mul(2 ** 8).round()
    sub = exact.subpixel_conv(tconv)
    assert sub is not None
    got = nn.functional.pixel_shuffle(sub(x), stride)
    assert got.shape == tconv(x).shape
    assert torch.equal(got, tconv(x))


def test_subpixel_conv_declines_what_it_cannot_express():
    assert exact.subpixel_conv(nn.ConvTranspose2d(4, 4, 3, 2, 1, 0)) is None     # output 2h - 1
    assert exact.subpixel_conv(nn.ConvTranspose2d(4, 4, 5, 2, 2, 1, groups=2)) is None


def test_exact_v2_decoder_gives_the_pixels_of_transposed_convolutions(monkeypatch):
    torch.manual_seed(1)
    model = VQVAE(ModelConfig(transform="deep", hidden=8, groups=4, group_dim=4, stages=2, codes=8)).eval()
    y = torch.randn(1, 16, 3, 5)
    fast = exact.exact_copy(model.decoder, torch.device("cpu"))(y.double(), 1)
    monkeypatch.setattr(exact, "subpixel_conv", lambda module: None)
    plain = exact.exact_copy(model.decoder, torch.device("cpu"))(y.double(), 1)
    assert torch.equal(fast, plain)
    assert not torch.equal(fast, model.decoder(y, 1).double())     # it is the exact path
