"""Build the "wallpapers" test set: photographs no one on the project trained or tuned on.

Issue 14 asks for the Kodak figures to hold on "any other photos". These come from
Debian's wallpaper packages (DESIGN.md names them as a source of photos), which are
not in ../shared, so install them first:

    apt-get install --no-install-recommends plasma-workspace-wallpapers mate-backgrounds
    python benchmarks/wallpapers.py /tmp/wallpapers
    aecodec bench --images /tmp/wallpapers --anchors "" --out benchmarks/results/wallpapers

Only the photographs are taken (the packages also hold drawings and renderings). The
sources are JPEGs of 1280 to 2560 pixels, some strongly compressed, so each is scaled
to 1024 pixels on its long side (Lanczos), which also hides their JPEG blocking, as
the training data's random downscaling does. The images stay out of the repository.
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

PLASMA = Path("/usr/share/wallpapers")
MATE = Path("/usr/share/backgrounds/mate/nature")
PHOTOS = (
    [PLASMA / name / "contents/images/2560x1600.jpg" for name in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
        "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")]
    + [MATE / f"{name}.jpg" for name in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
        "Storm", "TwoWings", "Wood", "YellowFlower")]
)
LONG_SIDE = 1024


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python benchmarks/wallpapers.py OUT_FOLDER")
    missing = [str(p) for p in PHOTOS if not p.is_file()]
    if missing:
        sys.exit(f"{len(missing)} photos missing (first: {missing[0]}); install plasma-workspace-wallpapers "
                 "and mate-backgrounds")
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for path in PHOTOS:
        name = path.relative_to(PLASMA).parts[0] if path.is_relative_to(PLASMA) else path.stem
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = LONG_SIDE / max(im.size)
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        im.save(out / f"{name}.png")
    print(f"{len(PHOTOS)} photos in {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
