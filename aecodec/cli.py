"""The ``aecodec`` command line. It only calls the public API."""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from functools import lru_cache, partial
from pathlib import Path

import click

from . import DEFAULT_QUALITY, QUALITIES
from .format import FormatError, parse
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
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
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


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


def _plan(inputs: list[str], output: str | None, suffix: str, wanted: set[str],
          recursive: bool) -> list[tuple[str, str]]:
    """(input, output) pairs: next to each input, into a folder (keeping the tree of a
    folder input), one named file, or standard output."""
    if output == "-" or (output is None and inputs == ["-"]):
        if len(inputs) != 1 or Path(inputs[0]).is_dir():
            raise Failure("standard output takes one input file only")
        return [(inputs[0], "-")]
    if "-" in inputs and output is None:
        raise Failure("reading standard input needs -o")
    pairs = []
    out_dir = Path(output) if output is not None else None
    many = len(inputs) > 1 or any(Path(i).is_dir() for i in inputs)
    if out_dir is not None and many:
        if out_dir.exists() and not out_dir.is_dir():
            raise Failure(f"with several inputs or a folder, -o must be a folder: {output}")
        out_dir.mkdir(parents=True, exist_ok=True)
    for inp in inputs:
        path = Path(inp)
        if path.is_dir():
            found = path.rglob("*") if recursive else path.glob("*")
            for f in sorted(p for p in found if p.is_file() and p.suffix.lower() in wanted):
                rel = f.relative_to(path).with_suffix(suffix)
                pairs.append((str(f), str((out_dir / rel) if out_dir else f.with_suffix(suffix))))
        elif out_dir is not None and (many or out_dir.is_dir()):
            pairs.append((inp, str(out_dir / (path.stem + suffix))))
        elif out_dir is not None:
            pairs.append((inp, output))
        else:
            pairs.append((inp, str(path.with_suffix(suffix))))
    if not pairs:
        raise Failure("no input files found" + ("" if recursive else " (use --recursive for subfolders)"))
    return pairs


def _run_batch(pairs: list[tuple[str, str]], task, desc: str, skip_existing: bool,
               weights: str | None, device: str, jobs: int, batch: int | None) -> None:
    """Run ``task(codec, group)`` on groups of ``batch`` pairs; report failures per file,
    carry on, exit 1 if any.

    ``task`` returns, per pair, ((bytes read, bytes written, pixels), None) or (None,
    one-line error). The networks see a whole group at once (batching pays on a GPU,
    hence the default of 8 there and 1 on a CPU). With ``jobs`` > 1 the groups go to
    that many worker processes, each with its own model (on a GPU they share it, and
    one worker's entropy coding overlaps another's network work).
    """
    from tqdm import tqdm
    many = len(pairs) > 1
    todo = [(i, o) for i, o in pairs if not (skip_existing and o != "-" and Path(o).exists())]
    skipped = len(pairs) - len(todo)
    for _, out in todo:
        if out != "-":
            Path(out).parent.mkdir(parents=True, exist_ok=True)
    batch = batch or _default_batch(device)
    groups = [todo[i:i + batch] for i in range(0, len(todo), batch)]
    jobs = min(jobs, len(groups))
    if jobs > 1:
        _check_codec_args(weights, device)   # one clear error before any worker starts
        results = _parallel(groups, task, weights, device, jobs)
    else:
        codec = _codec(weights, device) if todo else None
        results = (r for group in groups for r in task(codec, group))
    failed = bytes_in = bytes_out = pixels = done = 0
    for (inp, _), (counts, error) in zip(todo, tqdm(results, total=len(todo), desc=desc, unit="file",
                                                     disable=not many, file=sys.stderr, leave=False)):
        if error is not None:
            failed += 1
            if not many:
                raise Failure(f"{inp}: {error}")
            click.echo(f"aecodec: error: {inp}: {error}", err=True)
            continue
        bytes_in, bytes_out, pixels, done = (bytes_in + counts[0], bytes_out + counts[1],
                                             pixels + counts[2], done + 1)
    if many:
        bpp = f", mean {8 * bytes_out / pixels:.3f} bpp out" if desc == "compressing" and pixels else ""
        click.echo(f"{done} files done, {skipped} skipped, {failed} failed; {bytes_in} bytes in, "
                   f"{bytes_out} bytes out{bpp}", err=True)
    if failed:
        raise Failure(f"{failed} of {len(pairs)} files failed")


def _check_codec_args(weights: str | None, device: str) -> None:
    """What loading a Codec would refuse (weights, device), without building a model here."""
    from .codec import resolve_device
    from .weights import load_weights
    try:
        load_weights(weights)
        resolve_device(device)
    except EXPECTED_ERRORS as exc:
        raise Failure(_one_line(exc)) from None


def _default_batch(device: str) -> int:
    from .codec import resolve_device
    try:
        return 8 if resolve_device(device).type == "cuda" else 1
    except RuntimeError:
        return 1                              # the codec will say why the device is wrong


def _attempt(work, *args):
    """(result, None) or (None, one-line error): errors travel back from worker processes as text."""
    try:
        return work(*args), None
    except EXPECTED_ERRORS as exc:
        return None, _one_line(exc)


def _per_file(group, prepare, networks, finish):
    """Results for a group of (input, output) pairs: ``prepare`` each input alone (->
    item, bytes read), run ``networks`` on all prepared items at once, then ``finish``
    each. A failure in the batched step is retried file by file, so it is reported
    against the file that caused it."""
    prepared = [_attempt(prepare, inp) for inp, _ in group]
    ready = [k for k, (_, error) in enumerate(prepared) if error is None]
    made, error = _attempt(networks, [prepared[k][0][0] for k in ready])
    if error is None:
        made = [(m, None) for m in made]
    else:
        made = [_attempt(lambda item: networks([item])[0], prepared[k][0][0]) for k in ready]
    results = list(prepared)
    for k, (m, error) in zip(ready, made):
        results[k] = (None, error) if error is not None else \
            _attempt(finish, m, group[k][1], prepared[k][0][1])
    return results


@lru_cache(maxsize=None)
def _worker_codec(weights: str | None, device: str, threads: int):
    """One model per worker process, loaded on its first file."""
    import torch
    torch.set_num_threads(threads)
    return _codec(weights, device)


def _in_worker(task, weights, device, threads, group):
    try:
        codec = _worker_codec(weights, device, threads)
    except Failure as exc:
        return [(None, exc.message)] * len(group)
    return task(codec, group)


def _parallel(groups, task, weights, device, jobs: int):
    """Per-file results in input order, from ``jobs`` spawned worker processes (spawn,
    not fork: a forked copy of a process that already ran torch's thread pools can hang)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_in_worker, task, weights, device, threads, group) for group in groups]
        for f in futures:
            yield from f.result()


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


def _batch_options(f):
    """Options shared by compress and decompress."""
    for option in reversed([
        click.option("-o", "--output", default=None, help="Output file, folder, or - for stdout."),
        click.option("-r", "--recursive", is_flag=True, help="Go into subfolders of folder inputs."),
        click.option("--skip-existing", is_flag=True, help="Leave inputs whose output exists alone."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
        click.option("--weights", default=None, help="A weights folder (default: the shipped model)."),
        click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                     help="Worker processes for many files [default: one per two cores]."),
        click.option("--batch", type=click.IntRange(min=1), default=None,
                     help="Images of one size through the networks at once "
                          "[default: 8 on a GPU, 1 on a CPU]."),
    ]):
        f = option(f)
    return f


@main.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-q", "--quality", type=click.IntRange(min(QUALITIES), max(QUALITIES)), default=None,
              help=f"Quality {min(QUALITIES)}-{max(QUALITIES)} [default: {DEFAULT_QUALITY}]; 1-8 keep that "
                   f"many RVQ stages, 9-13 add a detail layer. With a budget: the highest quality up to "
                   f"this one (default {max(QUALITIES)}) that fits, its detail step refined to the budget.")
@click.option("--max-bytes", type=str, default=None,
              help="Size budget per file (e.g. 50000, 50KB, 1.5MB): the best file that fits.")
@click.option("--bpp", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Budget in bits per pixel, likewise.")
@_batch_options
def compress(images, quality, max_bytes, bpp, output, recursive, skip_existing, device, weights, force,
             jobs, batch):
    """Compress IMAGES (files or folders) to .aec files, next to each input unless -o is given."""
    budget = _parse_size(max_bytes) if max_bytes is not None else None
    if budget is not None and bpp is not None:
        raise Failure("give --max-bytes or --bpp, not both")
    pairs = _plan(list(images), output, ".aec", IMAGE_SUFFIXES, recursive)
    task = partial(_compress_files, quality=quality, budget=budget, bpp=bpp, force=force)
    _run_batch(pairs, task, "compressing", skip_existing, weights, device, _jobs(jobs, pairs), batch)


def _compress_files(codec, group, *, quality, budget, bpp, force):
    def prepare(inp):
        if inp == "-":
            import io
            from PIL import Image
            raw = _read("-")
            return codec.load(Image.open(io.BytesIO(raw))), len(raw)
        return codec.load(inp), Path(inp).stat().st_size

    def finish(data, out, size_in):
        _write(out, data, force)
        header = parse(data)
        return size_in, len(data), header.width * header.height

    networks = partial(codec.encode_many, quality=quality, max_bytes=budget, bpp=bpp, batch=len(group))
    return _per_file(group, prepare, networks, finish)


def _jobs(jobs: int | None, pairs) -> int:
    """Default: one worker per two cores for batches (each also uses two torch threads)."""
    if any("-" in pair for pair in pairs):
        return 1
    if jobs is None:
        jobs = max(1, (os.cpu_count() or 1) // 2)
    return jobs


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", default="png", show_default=True,
              help="Image format of the output (by Pillow's name, e.g. png, tiff, webp).")
@_batch_options
def decompress(files, fmt, output, recursive, skip_existing, device, weights, force, jobs, batch):
    """Decompress .aec FILES (or folders of them) to images, PNG next to each input by default."""
    pairs = _plan(list(files), output, "." + fmt.lower(), {".aec"}, recursive)
    task = partial(_decompress_files, fmt=fmt, force=force)
    _run_batch(pairs, task, "decompressing", skip_existing, weights, device, _jobs(jobs, pairs), batch)


def _decompress_files(codec, group, *, fmt: str, force: bool):
    def prepare(inp):
        raw = _read(inp)
        codec.parse(raw)                 # a bad header fails here, alone
        return raw, len(raw)

    def finish(image, out, size_in):
        import io
        buf = io.BytesIO()
        image.save(buf, format=fmt.upper())
        _write(out, buf.getvalue(), force)
        return size_in, buf.tell(), image.width * image.height

    return _per_file(group, prepare, partial(codec.decode_many, batch=len(group)), finish)


@main.command()
@click.argument("file")
def info(file):
    """Show what an .aec FILE holds (without decoding it)."""
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
    click.echo(f"stages:         {f.stage_count}")
    click.echo(f"detail layer:   {f'{len(f.detail)} bytes' if f.detail else 'none'}")
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
    """Keep what of FILE fits in --max-bytes: all of it, else its detail layer goes, then
    trailing stages (a valid, coarser file)."""
    from . import truncate as truncate_bytes
    try:
        _write(output, truncate_bytes(_read(file), max_bytes), force)
    except EXPECTED_ERRORS as exc:
        raise Failure(f"{file}: {_one_line(exc)}") from None


main.add_command(train_command, "train")
main.add_command(bench_command, "bench")

if __name__ == "__main__":
    main()
