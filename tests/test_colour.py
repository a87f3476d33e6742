"""An embedded ICC profile is applied, so a photo does not silently change colour."""
import io
import struct

import numpy as np
from PIL import Image

import aecodec


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x, y, z) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def matrix_profile(red, green, blue) -> bytes:
    """A minimal ICC v2 RGB display profile: primaries (D50 XYZ) and gamma 2.2 curves."""
    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", int(2.2 * 256)) + b"\0\0"
    desc_text = b"test\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * 12 + b"\0" * 67
    tags = [(b"desc", desc), (b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", _xyz(*red)),
            (b"gXYZ", _xyz(*green)), (b"bXYZ", _xyz(*blue)), (b"rTRC", curve), (b"gTRC", curve),
            (b"bTRC", curve), (b"cprt", b"text" + b"\0" * 4 + b"none\0\0\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"none" + bytes([2, 0x10, 0, 0]) + b"mntr" + b"RGB " + b"XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + _s15(0.9642) + _s15(1.0)
              + _s15(0.8249) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


# sRGB's primaries (D50-adapted), with red and green swapped: (255, 0, 0) in this
# space is sRGB's green.
SRGB_R, SRGB_G, SRGB_B = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def test_the_profile_is_applied(tmp_path):
    icc = matrix_profile(SRGB_G, SRGB_R, SRGB_B)
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :32, 0] = 230                           # "red" in the swapped space: green on screen
    rgb[:, 32:, 2] = 230                           # blue stays blue
    path = tmp_path / "tagged.png"
    Image.fromarray(rgb).save(path, icc_profile=icc)
    out = np.asarray(aecodec.decode(aecodec.encode(path, max(aecodec.QUALITIES)))).astype(int)
    left, right = out[8:56, 4:28].mean((0, 1)), out[8:56, 36:60].mean((0, 1))
    assert left[1] > 150 and left[0] < 90          # green, as a colour-managed viewer shows it
    assert right[2] > 150 and right[0] < 90 and right[1] < 90


def test_an_srgb_tagged_photo_is_unchanged(tmp_path, photo_crop):
    from PIL import ImageCms
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(photo_crop).save(buf, "PNG", icc_profile=srgb)
    tagged = aecodec.decode(aecodec.encode(Image.open(io.BytesIO(buf.getvalue())), 6))
    plain = aecodec.decode(aecodec.encode(photo_crop, 6))
    diff = np.abs(np.asarray(tagged).astype(int) - np.asarray(plain).astype(int))
    assert diff.mean() < 1.5
