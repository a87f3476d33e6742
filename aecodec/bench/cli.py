"""``aecodec bench``: rate-distortion against JPEG, WebP, AVIF and JPEG XL."""
from __future__ import annotations

from pathlib import Path

import click

SHARED = Path("../shared")


@click.command("bench")
@click.option("--images", default=str(SHARED / "data" / "kodak"), show_default=True,
              help="Folder of test images, or 'validation' for the held-out training photos.")
@click.option("--codecs", default="aecodec,jpeg,webp,avif,jpegxl", show_default=True,
              help="Comma-separated codecs to run.")
@click.option("--out", type=click.Path(file_okay=False), default="benchmarks/results/kodak",
              show_default=True, help="Output folder.")
@click.option("--anchors", type=click.Path(file_okay=False),
              default=str(SHARED / "anchors" / "compressai-kodak"), show_default=True,
              help="Published CompressAI curves to overlay (skipped when absent).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--weights", type=click.Path(file_okay=False, exists=True), default=None,
              help="aecodec weights folder to measure (a candidate model); default: the shipped one.")
@click.option("-f", "--force", is_flag=True, help="Replace results already in --out.")
def main(images, codecs, out, anchors, limit, force, weights):
    """Measure every codec on a folder of images and write JSON, CSV, plots and a BD table.

    Needs the bench extras: pip install "aecodec[bench]"."""
    import importlib.util
    missing = [pkg for mod, pkg in (("pytorch_msssim", "pytorch-msssim"), ("matplotlib", "matplotlib"),
                                    ("scipy", "scipy")) if importlib.util.find_spec(mod) is None]
    if missing:
        raise click.ClickException(f"aecodec bench needs {', '.join(missing)}: pip install \"aecodec[bench]\"")
    if Path(out).is_dir() and any(Path(out).glob("*.json")) and not force:
        raise click.ClickException(f"{out} already holds results (the committed ones, in a checkout): "
                                   f"use --force to replace them, or --out elsewhere")
    from .codecs import default_codecs
    from .run import run
    from ..imageio import list_images
    if images == "validation":
        from ..train.data import validation_files
        files = validation_files()
    elif Path(images).is_dir():
        files = list_images(Path(images))
    else:
        raise click.ClickException(f"image folder not found: {images}")
    files = files[:limit]
    try:
        chosen = default_codecs([c.strip() for c in codecs.split(",") if c.strip()], weights)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        results = run(chosen, files, Path(out), Path(anchors) if anchors else None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    table = Path(out) / "bdrate.md"
    if table.exists():
        click.echo(table.read_text())
    for name, res in results.items():
        r = res["results"]
        click.echo(f"{name}: " + ", ".join(f"{b:.3f} bpp {p:.2f} dB" for b, p in zip(r["bpp"], r["psnr-rgb"])))
