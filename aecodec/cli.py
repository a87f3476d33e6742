"""The ``aecodec`` command line. It only calls the public API."""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import click

from . import DEFAULT_QUALITY, QUALITIES
from .format import FormatError
from .imageio import InputError
from .train.cli import main as train_command
from .bench.cli import main as bench_command
from .weights import WeightsError

EXPECTED_ERRORS = (FormatError, InputError, WeightsError, ValueError, OSError, RuntimeError)


class Failure(click.ClickException):
    """One-line error, exit code 1, no traceback."""

    def show(self, file=None):
        click.echo(f"aecodec: error: {self.message}", err=True)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextmanager
def atomic_output(path: Path, force: bool):
    """Yield a temporary file next to ``path``; rename it over ``path`` only on success."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write(path: str | Path, data: bytes, force: bool) -> None:
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with atomic_output(Path(path), force) as f:
        f.write(data)


def _read(path: str) -> bytes:
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()


def _outputs(inputs: list[str], output: str | None, suffix: str) -> list[str]:
    """Where each input's result goes: next to it, into a folder, or one named file."""
    if output == "-" or (output is None and inputs == ["-"]):
        if len(inputs) != 1:
            raise Failure("standard output takes one input only")
        return ["-"]
    if output is not None and (len(inputs) > 1 or Path(output).is_dir()):
        out_dir = Path(output)
        if not out_dir.is_dir():
            raise Failure(f"with several inputs, -o must be an existing folder: {output}")
        return [str(out_dir / (Path(i).stem + suffix)) for i in inputs]
    if output is not None:
        return [output]
    if "-" in inputs:
        raise Failure("reading standard input needs -o")
    return [str(Path(i).with_suffix(suffix)) for i in inputs]


def _parse_size(text: str) -> int:
    """'50000', '50KB', '50kB', '1.5MB', '20KiB' -> bytes (KB = 1000, KiB = 1024)."""
    units = {"": 1, "B": 1, "KB": 1000, "MB": 1000 ** 2, "KIB": 1024, "MIB": 1024 ** 2}
    t = text.strip().upper()
    num = t.rstrip("KMIB")
    unit = t[len(num):]
    try:
        value = float(num) * units[unit]
    except (ValueError, KeyError):
        raise Failure(f"cannot read size {text!r} (use e.g. 50000, 50KB or 1.5MB)") from None
    if value < 1:
        raise Failure(f"size budget must be at least 1 byte, not {text!r}")
    return int(value)


def _run_batch(inputs: list[str], outputs: list[str], work, desc: str) -> None:
    """Run ``work(inp, out)`` for each file; report failures, carry on, exit 1 if any."""
    from tqdm import tqdm
    failed = 0
    show = len(inputs) > 1
    for inp, out in tqdm(list(zip(inputs, outputs)), desc=desc, unit="file", disable=not show,
                         file=sys.stderr, leave=False):
        try:
            work(inp, out)
        except EXPECTED_ERRORS as exc:
            failed += 1
            if len(inputs) == 1:
                raise Failure(f"{inp}: {_one_line(exc)}") from None
            click.echo(f"aecodec: error: {inp}: {_one_line(exc)}", err=True)
    if failed:
        raise Failure(f"{failed} of {len(inputs)} files failed")


def _codec(weights: str | None, device: str):
    from .codec import Codec
    try:
        return Codec(weights, device=device)
    except EXPECTED_ERRORS as exc:
        raise Failure(_one_line(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aecodec")
def main():
    """aecodec: a learned lossy image codec."""


@main.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", default=None, help="Output file, folder, or - for stdout.")
@click.option("-q", "--quality", type=click.IntRange(min(QUALITIES), max(QUALITIES)), default=None,
              help=f"Number of RVQ stages kept [default: {DEFAULT_QUALITY}; with a budget, "
                   f"the most that fit, up to {max(QUALITIES)}].")
@click.option("--max-bytes", type=str, default=None,
              help="Size budget per file (e.g. 50000, 50KB, 1.5MB): the best file that fits.")
@click.option("--bpp", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Budget in bits per pixel, likewise.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--weights", default=None, help="A weights folder (default: the shipped model).")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
def compress(images, output, quality, max_bytes, bpp, device, weights, force):
    """Compress IMAGES to .aec files (next to each input unless -o is given)."""
    budget = _parse_size(max_bytes) if max_bytes is not None else None
    if budget is not None and bpp is not None:
        raise Failure("give --max-bytes or --bpp, not both")
    codec = _codec(weights, device)
    inputs = list(images)

    def work(inp, out):
        source = inp
        if inp == "-":
            import io
            from PIL import Image
            source = Image.open(io.BytesIO(_read("-")))
        _write(out, codec.encode(source, quality, max_bytes=budget, bpp=bpp), force)

    _run_batch(inputs, _outputs(inputs, output, ".aec"), work, "compressing")


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", default=None, help="Output file, folder, or - for stdout.")
@click.option("--format", "fmt", default="png", show_default=True,
              help="Image format of the output (by Pillow's name, e.g. png, tiff, webp).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--weights", default=None, help="A weights folder (default: the shipped model).")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
def decompress(files, output, fmt, device, weights, force):
    """Decompress .aec FILES to images (PNG next to each input by default)."""
    import io
    codec = _codec(weights, device)
    inputs = list(files)

    def work(inp, out):
        image = codec.decode(_read(inp))
        buf = io.BytesIO()
        image.save(buf, format=fmt.upper())
        _write(out, buf.getvalue(), force)

    _run_batch(inputs, _outputs(inputs, output, "." + fmt.lower()), work, "decompressing")


@main.command()
@click.argument("file")
def info(file):
    """Show what an .aec FILE holds (without decoding it)."""
    from .format import parse
    from .weights import load_weights
    try:
        data = _read(file)
        f = parse(data)
    except EXPECTED_ERRORS as exc:
        raise Failure(f"{file}: {_one_line(exc)}") from None
    try:
        default_id = load_weights().model_id
        model_note = "default model" if default_id == f.model_id else "not the default model"
    except WeightsError:
        model_note = "default weights unavailable"
    click.echo(f"file:           {file}")
    click.echo(f"size:           {f.width}x{f.height}")
    click.echo(f"mode:           {f.mode}")
    click.echo(f"quality:        {f.quality} (stages)")
    click.echo(f"bytes:          {len(data)}")
    click.echo(f"bpp:            {len(data) * 8 / (f.width * f.height):.4f}")
    click.echo(f"stage bytes:    {' '.join(str(len(s)) for s in f.stages)}")
    click.echo(f"model:          {f.model_id.hex()} ({model_note})")
    click.echo(f"format version: {f.version}")


@main.command()
@click.argument("file")
@click.option("--max-bytes", type=click.IntRange(min=1), required=True, help="Size budget in bytes.")
@click.option("-o", "--output", required=True, help="Output file, or - for stdout.")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
def truncate(file, max_bytes, output, force):
    """Keep the stages of FILE that fit in --max-bytes (a valid, coarser file)."""
    from . import truncate as truncate_bytes
    try:
        _write(output, truncate_bytes(_read(file), max_bytes), force)
    except EXPECTED_ERRORS as exc:
        raise Failure(f"{file}: {_one_line(exc)}") from None


main.add_command(train_command, "train")
main.add_command(bench_command, "bench")

if __name__ == "__main__":
    main()
