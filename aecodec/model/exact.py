"""Exact synthesis: the decoder network computed so that every machine, thread count
and batch gives the same pixels, by construction.

Float convolutions differ in their last bits with the reduction order, which depends
on the thread count, the batch, the device and the library's choice of algorithm; a
value near a rounding boundary then turns into a different pixel. Here every
convolution sees inputs on a dyadic grid (multiples of 2**-ACT_BITS, clamped to
+-2**ACT_RANGE) and weights on a grid fine enough that, in float64, every product and
every partial sum is an exactly representable number: the bound
fan_in * max|x| * max|w| * 2**(ACT_BITS + weight_bits) < 2**53 is checked per layer.
Exact sums do not depend on their order, so the convolution outputs are identical
wherever they are computed. Everything between convolutions is a single IEEE-754
operation per element (add, multiply, divide, compare: correctly rounded on every
CPU and GPU), so it is deterministic too.

Activations are carried as the integers grid value * 2**ACT_BITS, and each weight
grid is scaled by 2**-ACT_BITS instead: a power-of-two scaling changes no product or
sum, and it saves a pass over every activation (a quarter of the rounding time).

The grids cost nothing measurable in quality (2**-12 on activations in [0, 1] units
is 0.06 of a pixel level) and about 4x the time of a float32 decoder on a CPU.
"""
from __future__ import annotations

import copy
import math
from contextlib import nullcontext

import torch
from torch import nn

ACT_BITS = 12          # activations are multiples of 2**-12
ACT_RANGE = 12         # ... clamped to +-2**12
EXACT_BITS = 52        # float64 integers are exact below 2**53


def _on_grid(x: torch.Tensor, bits: int) -> torch.Tensor:
    scale = float(2 ** bits)
    return (x * scale).round_().div_(scale)    # power-of-two scaling: exact


def _fan_in(conv: nn.Module) -> int:
    kh, kw = conv.kernel_size
    if isinstance(conv, nn.ConvTranspose2d):
        sh, sw = conv.stride
        return conv.in_channels // conv.groups * math.ceil(kh / sh) * math.ceil(kw / sw)
    return conv.in_channels // conv.groups * kh * kw


def _weight_bits(fan_in: int, max_weight: float, act_range: int) -> int:
    headroom = EXACT_BITS - ACT_BITS - act_range - math.ceil(math.log2(fan_in * max(max_weight, 2 ** -20)))
    if headroom < 8:
        raise ValueError(f"a layer with fan-in {fan_in} and weights up to {max_weight:.3g} leaves only "
                         f"{headroom} bits for exact float64 synthesis")
    return min(24, headroom)


def inputs_on_grid(x: torch.Tensor) -> torch.Tensor:
    """``x`` on the activation grid, as integers (grid value * 2**ACT_BITS)."""
    limit = float(2 ** (ACT_BITS + ACT_RANGE))
    return (x * float(2 ** ACT_BITS)).round_().clamp_(-limit, limit)


def weights_on_grid(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int):
    """(weight, bias) on grids that keep a convolution of grid inputs exact; the weight
    also carries the inputs' 2**-ACT_BITS (see ``inputs_on_grid``)."""
    bits = _weight_bits(fan_in, float(weight.abs().max()), ACT_RANGE)
    weight = _on_grid(weight, bits) * 2.0 ** -ACT_BITS
    return weight, None if bias is None else _on_grid(bias, bits + ACT_BITS)


def _round_input(module: nn.Module, args):
    return (inputs_on_grid(args[0]),) + tuple(args[1:])


BAND_BYTES = 32 << 20      # float64 im2col buffer per band of output rows


def banded_conv2d(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` computed in bands of output rows, each band's input padded and put
    on the grid on its own: no copy of the whole input is made, and the float64 im2col
    buffer (in_channels * k * k * rows * width * 8 bytes) stays near BAND_BYTES whatever
    the tile size. Exact sums make the bands' results identical to one piece."""
    (kh, kw), (sh, sw), (ph, pw) = module.kernel_size, module.stride, module.padding
    if module.dilation != (1, 1) or module.groups != 1 or isinstance(module.padding, str):
        return torch.nn.functional.conv2d(inputs_on_grid(x), module.weight, module.bias, module.stride,
                                          module.padding, module.dilation, module.groups)
    n, c, h, w = x.shape
    out_h, out_w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    rows = max(1, BAND_BYTES // max(1, 8 * n * c * kh * kw * out_w))
    out = None
    for r0 in range(0, out_h, rows):
        r1 = min(out_h, r0 + rows)
        top, bottom = r0 * sh - ph, (r1 - 1) * sh + kh - ph          # input rows, padding outside
        piece = torch.nn.functional.pad(x[:, :, max(0, top):min(h, bottom)],
                                        (pw, pw, max(0, -top), max(0, bottom - h)))
        band = torch.nn.functional.conv2d(inputs_on_grid(piece), module.weight, module.bias, (sh, sw))
        if out is None:
            out = band.new_empty(n, band.shape[1], out_h, out_w)
        out[:, :, r0:r1] = band
    return out


def subpixel_conv(module: nn.ConvTranspose2d) -> nn.Conv2d | None:
    """The plain convolution that, followed by ``pixel_shuffle(stride)``, computes
    ``module``: output phase (a, b) of input cell q is sum_d x[q + d] w[a + p - s d],
    a few taps per phase (zeros elsewhere). The sums hold the same products as the
    transposed convolution's, so on the grids the result is identical, and a direct
    float64 convolution is about 1.4x faster than PyTorch's transposed one on a CPU.
    None where the output is not exactly ``stride`` times the input."""
    (k, k2), (s, s2), (p, p2), (op, op2) = (module.kernel_size, module.stride, module.padding,
                                            module.output_padding)
    if (k, s, p, op) != (k2, s2, p2, op2) or module.groups != 1 or module.dilation != (1, 1) \
            or k - 2 * p + op != s:
        return None
    hi = max((k - 1 - p) // s, (s - 1 + p) // s)                       # |d| <= hi: symmetric padding
    taps = 2 * hi + 1
    cin, cout = module.in_channels, module.out_channels
    w = module.weight                                                   # [cin, cout, k, k]
    sub = w.new_zeros(cout, s, s, cin, taps, taps)
    for a in range(s):
        for dy in range(-hi, hi + 1):
            ky = a + p - s * dy
            if not 0 <= ky < k:
                continue
            for b in range(s):
                for dx in range(-hi, hi + 1):
                    kx = b + p - s * dx
                    if 0 <= kx < k:
                        sub[:, a, b, :, dy + hi, dx + hi] = w[:, :, ky, kx].T
    conv = nn.Conv2d(cin, cout * s * s, taps, padding=hi, bias=module.bias is not None)
    conv = conv.to(device=w.device, dtype=w.dtype)
    conv.weight.data = sub.reshape(cout * s * s, cin, taps, taps)
    if module.bias is not None:
        conv.bias.data = module.bias.detach().repeat_interleave(s * s)
    return conv


FILTER_BAND_ROWS = 256    # full-resolution rows per band of a row-local filter


def banded_rows(module: nn.Module, halo: int, rows: int = FILTER_BAND_ROWS) -> None:
    """Run ``module`` (same size in and out, local within ``halo`` rows, a multiple of 4)
    in bands of ``rows`` rows plus the halo: its activations at full resolution are the
    exact decoder's largest, and a band holds a fraction of them. Exact sums make every
    kept row identical to the one-piece result."""
    whole = module.forward

    def forward(x, *args):
        h = x.shape[2]
        if h <= rows + 2 * halo:
            return whole(x, *args)
        out = None
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            a0, a1 = max(0, r0 - halo), min(h, r1 + halo)
            y = whole(x[:, :, a0:a1], *args)
            if out is None:
                out = y.new_empty(x.shape[0], y.shape[1], h, x.shape[3])
            out[:, :, r0:r1] = y[:, :, r0 - a0:r1 - a0]
        return out

    module.forward = forward


@torch.no_grad()
def exact_copy(decoder: nn.Module, device: torch.device) -> nn.Module:
    """A float64 copy of ``decoder`` whose convolutions are exact (see module doc)."""
    exact = copy.deepcopy(decoder).to(device=device, dtype=torch.float64)
    for module in exact.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            # the bias goes on the grid of the products, so adding it is exact too
            weight, bias = weights_on_grid(module.weight, module.bias, _fan_in(module))
            module.weight.copy_(weight)
            if bias is not None:
                module.bias.copy_(bias)
            sub = subpixel_conv(module) if isinstance(module, nn.ConvTranspose2d) else None
            if isinstance(module, nn.Conv2d):
                module.forward = lambda x, m=module: banded_conv2d(m, x)
            elif sub is not None:
                module.forward = lambda x, m=sub, r=module.stride[0]: torch.nn.functional.pixel_shuffle(
                    banded_conv2d(m, x), r)
            else:
                module.register_forward_pre_hook(_round_input)
        elif hasattr(module, "make_exact"):       # layers with a functional convolution inside
            module.make_exact(weights_on_grid, inputs_on_grid)
        if hasattr(module, "row_halo"):           # row-local filters at full resolution
            banded_rows(module, module.row_halo)
    return exact.eval()


def exact_context(device: torch.device):
    """cuDNN may pick FFT or Winograd algorithms, which are not exact: use PyTorch's
    own direct convolutions on a GPU (a no-op on the CPU)."""
    if device.type == "cuda":
        return torch.backends.cudnn.flags(enabled=False)
    return nullcontext()
