from pathlib import Path

import numpy as np
import pytest

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"


@pytest.fixture(scope="session")
def codec():
    from aecodec.codec import Codec
    return Codec(device="cpu")


@pytest.fixture(scope="session")
def kodak_dir():
    if not KODAK.is_dir():
        pytest.skip(f"Kodak photos not found at {KODAK} (they live in ../shared, outside the repo)")
    return KODAK


@pytest.fixture
def photo_crop(kodak_dir):
    """A real 96x64 photo crop: small enough to keep tests fast."""
    from PIL import Image
    with Image.open(kodak_dir / "kodim23.png") as im:
        return np.asarray(im.convert("RGB"))[200:264, 300:396].copy()


def psnr(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mse = ((a - b) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
