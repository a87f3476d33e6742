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


def sample_photo(name: str = "astronaut") -> np.ndarray:
    """A real photo the test dependencies ship (scikit-image's bundled samples), so the
    suite checks real content on a clean checkout, without ../shared."""
    import skimage.data
    return np.ascontiguousarray(getattr(skimage.data, name)())


@pytest.fixture
def photo_crop():
    """A real 96x64 photo crop: small enough to keep tests fast."""
    return sample_photo("astronaut")[40:104, 160:256].copy()


@pytest.fixture(scope="session")
def photo_large():
    """A real 512x512 photo (larger than one tile at small tile settings)."""
    return sample_photo("astronaut")


def psnr(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mse = ((a - b) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
