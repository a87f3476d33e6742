"""The ``aecodec`` command line. It only calls the public API.

Habits follow cwebp, cjxl and avifenc: one summary line per file (``--quiet`` for
none, ``-v`` for more), the output format taken from the ``-o`` name, nothing
overwritten without ``--force``, one-line errors and distinct exit codes.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
from functools import lru_cache, partial
from pathlib import Path

import click

from .card import DEFAULT_QUALITY, default_qualities
from .errors import DeviceError, FormatError, InputError, WeightsError
from .format import MAGIC
from .imageio import IMAGE_SUFFIXES
from .outputs import write_file

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SETUP, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES_HELP = ("Exit codes: 0 success; 1 an input could not be read or an output could not be "
                   "written (the other files are still done); 2 usage error; 3 the weights or the "
                   "device cannot be used; 130 interrupted.")
EXPECTED_ERRORS = (FormatError, InputError, WeightsError, DeviceError, ValueError, OSError, RuntimeError)
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class Failure(click.ClickException):
    """One-line error, no traceback; exit code 1 unless told otherwise."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None):
        click.echo(f"aecodec: error: {self.message}", err=True)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"permission denied: {exc.filename}"
    if isinstance(exc, IsADirectoryError) and exc.filename:
        return f"is a folder: {exc.filename}"
    if isinstance(exc, DeviceError):
        return (f"no CUDA GPU is visible to PyTorch here for --device {exc.device}; use --device cpu "
                f"(or auto), or install a CUDA build of torch" if exc.missing_gpu else str(exc))
    return " ".join(str(exc).split()) or type(exc).__name__


def _write(path: str, data: bytes, force: bool) -> None:
    if path == "-":
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except (BrokenPipeError, ValueError):     # closed or broken standard output
            raise OSError("standard output is closed") from None
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_file(path, data, force)


def _read(path: str) -> bytes:
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


# -- planning: which input goes to which output --------------------------------------
def _is_folder_target(output: str) -> bool:
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def _check_creatable(folder: Path) -> None:
    """Refuse, before any work, an output folder that cannot be made or written."""
    probe = folder.absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise Failure(f"cannot create folder {folder}: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise Failure(f"cannot write into {probe}: permission denied")


def _plan(inputs: list[str], output: str | None, suffix: str, wanted: set[str], recursive: bool,
          warn) -> list[tuple[str, str]]:
    """(input, output) pairs: next to each input, into a folder (keeping the tree of a
    folder input), one named file, or standard output. Refuses outputs that collide."""
    if output == "-" or (output is None and inputs == ["-"]):
        if len(inputs) != 1 or Path(inputs[0]).is_dir():
            raise Failure("standard output takes one input file only", EXIT_USAGE)
        return [(inputs[0], "-")]
    if "-" in inputs and output is None:
        raise Failure("reading standard input needs -o", EXIT_USAGE)
    many = len(inputs) > 1 or any(Path(i).is_dir() for i in inputs)
    out_dir = None
    if output is not None and (many or _is_folder_target(output)):
        if Path(output).exists() and not Path(output).is_dir():
            raise Failure(f"with several inputs or a folder, -o must be a folder: {output} is a file",
                          EXIT_USAGE)
        if not _is_folder_target(output) and Path(output).suffix.lower() in wanted | {suffix}:
            raise Failure(f"several inputs need a folder for -o, but {output} names a file "
                          f"(end it with / to make a folder)", EXIT_USAGE)
        out_dir = Path(output)
    pairs = []
    for inp in inputs:
        path = Path(inp)
        if path.is_dir():
            found = path.rglob("*") if recursive else path.glob("*")
            files = sorted(p for p in found if p.is_file() and p.suffix.lower() in wanted)
            if not recursive:
                subfolders = [p for p in path.iterdir() if p.is_dir()]
                if subfolders:
                    warn(f"{inp}: {len(subfolders)} subfolder(s) not searched (use -r to include them)")
            for f in files:
                rel = f.relative_to(path).with_suffix(suffix)
                pairs.append((str(f), str((out_dir / rel) if out_dir else f.with_suffix(suffix))))
        elif out_dir is not None:
            pairs.append((inp, str(out_dir / (path.stem + suffix))))
        elif output is not None:
            pairs.append((inp, output))
        else:
            pairs.append((inp, str(path.with_suffix(suffix))))
    if not pairs:
        raise Failure("no input files found" + ("" if recursive else " (use -r for subfolders)"))
    _refuse_collisions(pairs)
    for folder in sorted({Path(o).parent for _, o in pairs if o != "-"}):
        _check_creatable(folder)
    return pairs


def _refuse_collisions(pairs: list[tuple[str, str]]) -> None:
    seen: dict[str, str] = {}
    inputs = {os.path.realpath(i) for i, _ in pairs if i != "-"}
    for inp, out in pairs:
        if out == "-":
            continue
        key = os.path.normcase(os.path.realpath(out))
        if key in inputs:
            raise Failure(f"{inp}: the output {out} would overwrite an input", EXIT_USAGE)
        if key in seen:
            raise Failure(f"{seen[key]} and {inp} would both be written to {out}; "
                          f"give them different names or folders", EXIT_USAGE)
        seen[key] = inp


# -- running many files ---------------------------------------------------------------
class Reporter:
    """What goes to stderr: per-file lines (unless quiet), errors, and a total."""

    def __init__(self, verbosity: int, many: bool):
        self.verbosity, self.many = verbosity, many

    def file_done(self, line: str) -> None:
        if self.verbosity >= 1:
            click.echo(line, err=True)

    def warn(self, message: str) -> None:
        if self.verbosity >= 0:
            click.echo(f"aecodec: warning: {message}", err=True)


def _run_batch(pairs: list[tuple[str, str]], task, desc: str, skip_existing: bool, codec_args: dict,
               jobs: int, batch: int | None, report: Reporter) -> None:
    """Run ``task(codec, group)`` on groups of ``batch`` pairs; report failures per file,
    carry on, exit 1 if any.

    ``task`` returns, per pair, ((bytes read, bytes written, pixels, summary), None) or
    (None, one-line error). With ``jobs`` > 1 the groups go to that many worker
    processes, each with its own model.
    """
    todo = [(i, o) for i, o in pairs if not (skip_existing and o != "-" and Path(o).exists())]
    skipped = len(pairs) - len(todo)
    batch = batch or _default_batch(codec_args["device"])
    groups = [todo[i:i + batch] for i in range(0, len(todo), batch)]
    jobs = min(jobs, len(groups))
    if jobs > 1:
        _check_codec_args(**codec_args)   # one clear error before any worker starts
        results = _parallel(groups, task, codec_args, jobs)
    else:
        codec = _codec(**codec_args) if todo else None
        results = (r for group in groups for r in task(codec, group))
    failed = bytes_in = bytes_out = pixels = done = 0
    for (inp, _), (counts, error) in zip(todo, results):
        if error is not None:
            failed += 1
            if not report.many:
                raise Failure(f"{inp}: {error}")
            click.echo(f"aecodec: error: {inp}: {error}", err=True)
            continue
        report.file_done(counts[3])
        bytes_in, bytes_out, pixels, done = (bytes_in + counts[0], bytes_out + counts[1],
                                             pixels + counts[2], done + 1)
    if (report.many or report.verbosity >= 2) and report.verbosity >= 0:
        bpp = f", mean {8 * bytes_out / pixels:.3f} bpp out" if desc == "compressing" and pixels else ""
        click.echo(f"{done} files done, {skipped} skipped, {failed} failed; {bytes_in} bytes in, "
                   f"{bytes_out} bytes out{bpp}", err=True)
    if failed:
        raise Failure(f"{failed} of {len(pairs)} files failed")


def _on_ray(task: str, pairs, report: Reporter, skip_existing: bool, jobs, batch, weights, device: str,
            **options) -> None:
    """The batch on Ray Data (aecodec.distributed); the same report and exit codes."""
    from . import distributed
    if any("-" in pair for pair in pairs):
        raise Failure("--ray works on files, not standard input or output", EXIT_USAGE)
    todo = [(i, o) for i, o in pairs if not (skip_existing and Path(o).exists())]
    run = distributed.compress_pairs if task == "compress" else distributed.decompress_pairs
    try:
        rows = run(todo, workers=jobs or 2, batch_size=batch or 4, weights=weights,
                   device="cpu" if device == "auto" else device, **options)
    except RuntimeError as exc:
        raise Failure(_one_line(exc), EXIT_SETUP) from None
    failed = [r for r in rows if r["error"]]
    for r in rows:
        if r["error"]:
            click.echo(f"aecodec: error: {r['source']}: {r['error']}", err=True)
        else:
            report.file_done(f"{Path(r['source']).name} -> {r['target']}, {_kib(r['bytes_out'])}")
    if report.verbosity >= 0:
        click.echo(f"{len(rows) - len(failed)} files done, {len(pairs) - len(todo)} skipped, "
                   f"{len(failed)} failed (on Ray)", err=True)
    if failed:
        raise Failure(f"{len(failed)} of {len(pairs)} files failed")


def _check_codec_args(weights: str | None, device: str, threads: int | None) -> None:
    """What loading a Codec would refuse (weights, device), without building a model here."""
    from .codec import resolve_device
    from .weights import load_weights
    try:
        load_weights(weights)
        resolve_device(device)
    except (WeightsError, DeviceError) as exc:
        raise Failure(_one_line(exc), EXIT_SETUP) from None


def _default_batch(device: str) -> int:
    from .codec import resolve_device
    try:
        return 8 if resolve_device(device).type == "cuda" else 1
    except DeviceError:
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
            _attempt(finish, m, group[k][0], group[k][1], prepared[k][0][1])
    return results


@lru_cache(maxsize=None)
def _worker_codec(weights: str | None, device: str, threads: int | None):
    """One model per worker process, loaded on its first file."""
    return _codec(weights, device, threads)


def _worker_init():
    # The parent handles Ctrl-C: it cancels what has not started and stops the
    # workers with SIGTERM, which unwinds here (removing any temporary output).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_INTERRUPTED))


def _in_worker(task, codec_args, group):
    try:
        codec = _worker_codec(**codec_args)
    except Failure as exc:
        return [(None, exc.message)] * len(group)
    return task(codec, group)


def _parallel(groups, task, codec_args, jobs: int):
    """Per-file results in input order, from ``jobs`` spawned worker processes (spawn,
    not fork: a forked copy of a process that already ran torch's thread pools can hang).
    On Ctrl-C, pending groups are cancelled and the workers stopped at once; outputs
    already renamed into place are complete, and no other is left behind."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    if codec_args["threads"] is None:
        codec_args = {**codec_args, "threads": max(1, (os.cpu_count() or 1) // jobs)}
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init)
    futures = [pool.submit(_in_worker, task, codec_args, group) for group in groups]
    try:
        for f in futures:
            yield from f.result()
    except BaseException:
        for f in futures:
            f.cancel()
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _parse_size(text: str) -> int:
    """'50000', '50KB', '50kB', '1.5MB', '20KiB' -> bytes (KB = 1000, KiB = 1024)."""
    units = {"": 1, "B": 1, "KB": 1000, "MB": 1000 ** 2, "KIB": 1024, "MIB": 1024 ** 2}
    t = text.strip().upper()
    num = t.rstrip("KMIB")
    unit = t[len(num):]
    try:
        value = float(num) * units[unit]
    except (ValueError, KeyError):
        raise Failure(f"cannot read size {text!r} (use e.g. 50000, 50KB or 1.5MB)", EXIT_USAGE) from None
    if not math.isfinite(value) or not 1 <= value <= 1 << 40:
        raise Failure(f"size budget must be from 1 byte to 1 TiB, not {text!r}", EXIT_USAGE)
    return int(value)


def _codec(weights: str | None, device: str, threads: int | None = None):
    from .codec import Codec
    if threads:
        import torch
        torch.set_num_threads(threads)
    try:
        return Codec(weights, device=device)
    except (WeightsError, DeviceError) as exc:
        raise Failure(_one_line(exc), EXIT_SETUP) from None
    except EXPECTED_ERRORS as exc:
        raise Failure(_one_line(exc)) from None


def _check_device(ctx, param, value: str) -> str:
    if not DEVICE_PATTERN.match(value):
        raise click.BadParameter(f"{value!r} is not a device: use auto, cpu, cuda or cuda:N")
    return value


def _kib(n: int) -> str:
    return f"{n} B" if n < 10_000 else f"{n / 1000:.0f} KB"


# -- commands ---------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(package_name="aecodec")
def main():
    """aecodec: a learned lossy image codec.

    \b
      aecodec compress photo.png            -> photo.aec
      aecodec decompress photo.aec          -> photo.png
      aecodec info photo.aec
    """


def _batch_options(f):
    """Options shared by compress and decompress."""
    for option in reversed([
        click.option("-o", "--output", default=None,
                     help="Output file, folder (an existing one, or a name ending in /), or - for stdout."),
        click.option("-r", "--recursive", is_flag=True, help="Go into subfolders of folder inputs."),
        click.option("--skip-existing", is_flag=True, help="Leave inputs whose output exists alone."),
        click.option("--device", default="auto", show_default=True, callback=_check_device,
                     help="auto, cpu, cuda or cuda:N."),
        click.option("--weights", default=None, help="A weights folder (default: the shipped model)."),
        click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
                     help="Worker processes for many files [default: one per two cores]."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="CPU threads per process [default: all cores, shared among the jobs]."),
        click.option("--batch", type=click.IntRange(min=1), default=None,
                     help="Images of one size through the networks at once "
                          "[default: 8 on a GPU, 1 on a CPU]."),
        click.option("--ray", "use_ray", is_flag=True,
                     help="Run on Ray Data (pip install \"aecodec[ray]\"): --jobs actors, each with one "
                          "model, on the cluster at $RAY_ADDRESS or a local one."),
        click.option("--quiet", is_flag=True, help="Print errors only."),
        click.option("-v", "--verbose", is_flag=True, help="Also print the totals of a single file."),
    ]):
        f = option(f)
    return f


def _quality_help() -> str:
    q = default_qualities()
    return (f"Quality {min(q)}-{max(q)} of the shipped model [default: {DEFAULT_QUALITY}]; higher is "
            f"larger and better. With a budget: the highest quality up to this one (default "
            f"{max(q)}) that fits.")


def _check_quality(quality: int | None, weights: str | None) -> None:
    """A quality of the ladder of the weights in use (read from the model card, no torch)."""
    if quality is None:
        return
    qualities = default_qualities()
    if weights:
        from .card import CARD_NAME, ladder_of
        try:
            card = json.loads((Path(weights) / CARD_NAME).read_text())
            qualities = tuple(range(1, len(ladder_of(card["config"])) + 1))
        except (OSError, ValueError, KeyError, TypeError):
            return                          # the codec will say what is wrong with the weights
    if quality not in qualities:
        raise Failure(f"-q {quality} is not a quality of this model: use {min(qualities)}-{max(qualities)}",
                      EXIT_USAGE)


@main.command()
@click.argument("images", nargs=-1, required=True)
@click.option("-q", "--quality", type=int, default=None, help=_quality_help())
@click.option("--max-bytes", type=str, default=None,
              help="Size budget per file (e.g. 50000, 50KB, 1.5MB): the best file that fits.")
@click.option("--bpp", type=float, default=None, help="Budget in bits per pixel, likewise.")
@_batch_options
def compress(images, quality, max_bytes, bpp, output, recursive, skip_existing, device, weights, force,
             jobs, threads, batch, use_ray, quiet, verbose):
    """Compress IMAGES (files or folders) to .aec files, next to each input unless -o is given.

    Metadata: the ICC colour profile is applied (pixels are converted to sRGB, which
    is what aecodec stores); EXIF orientation is applied; other EXIF and XMP are not
    kept."""
    _check_quality(quality, weights)
    budget = _parse_size(max_bytes) if max_bytes is not None else None
    if bpp is not None and not (math.isfinite(bpp) and bpp > 0):
        raise Failure(f"--bpp must be a positive finite number, not {bpp}", EXIT_USAGE)
    if budget is not None and bpp is not None:
        raise Failure("give --max-bytes or --bpp, not both", EXIT_USAGE)
    report = Reporter(-1 if quiet else (2 if verbose else 1), len(images) > 1 or any(
        Path(i).is_dir() for i in images))
    pairs = _plan(list(images), output, ".aec", IMAGE_SUFFIXES | {".aec"}, recursive, report.warn)
    for inp, out in pairs:
        if out == "-" and _stdout_is_terminal():
            raise Failure("refusing to write binary .aec data to a terminal: use -o FILE or redirect "
                          "standard output", EXIT_USAGE)
        if out != "-" and Path(out).suffix.lower() in IMAGE_SUFFIXES:
            raise Failure(f"compress writes .aec data, but -o {out} names a {Path(out).suffix} image; "
                          f"use a .aec name", EXIT_USAGE)
        if _looks_like_aec(inp):
            report.warn(f"{inp} is already an .aec file: re-encoding it loses quality again")
    if use_ray:
        return _on_ray("compress", pairs, report, skip_existing, jobs, batch, weights, device,
                       quality=quality, max_bytes=budget, bpp=bpp, force=force)
    task = partial(_compress_files, quality=quality, budget=budget, bpp=bpp, force=force)
    _run_batch(pairs, task, "compressing", skip_existing, dict(weights=weights, device=device, threads=threads),
               _jobs(jobs, pairs), batch, report)


def _looks_like_aec(path: str) -> bool:
    if path == "-":
        return False
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def _compress_files(codec, group, *, quality, budget, bpp, force):
    def prepare(inp):
        if inp == "-":
            import io
            raw = _read("-")
            return codec.load(io.BytesIO(raw)), len(raw)
        return codec.load(inp), Path(inp).stat().st_size

    def finish(data, inp, out, size_in):
        from .inspect import describe
        _write(out, data, force)
        d = describe(data, codec.weights.folder)
        q = f"q{d['quality']}" if d["quality"] else f"{d['stages']} stages (budget)"
        name = "stdin" if inp == "-" else Path(inp).name
        return size_in, len(data), d["width"] * d["height"], \
            f"{name}: {d['width']}x{d['height']} -> {_kib(len(data))}, {d['bpp']:.2f} bpp, {q}"

    networks = partial(codec.encode_many, quality=quality, max_bytes=budget, bpp=bpp, batch=len(group))
    return _per_file(group, prepare, networks, finish)


def _jobs(jobs: int | None, pairs) -> int:
    """Default: one worker per two cores for batches (each also uses two torch threads)."""
    if any("-" in pair for pair in pairs):
        return 1
    if jobs is None:
        jobs = max(1, (os.cpu_count() or 1) // 2)
    return jobs


def _pillow_format(name: str) -> str:
    """'png', 'jpg', 'JPEG', 'tif' -> Pillow's save format name; a clear error otherwise."""
    from PIL import Image
    Image.init()
    key = name.strip().lower().lstrip(".")
    fmt = Image.registered_extensions().get("." + key) or key.upper()
    if not key or fmt not in Image.SAVE or fmt == "AEC":
        raise Failure(f"cannot write images as {name!r}: use png, jpg, webp, tiff, bmp or another "
                      f"format Pillow saves", EXIT_USAGE)
    return fmt


def _suffix_for(fmt: str) -> str:
    from PIL import Image
    preferred = {"JPEG": ".jpg", "TIFF": ".tif", "PNG": ".png", "WEBP": ".webp"}
    if fmt in preferred:
        return preferred[fmt]
    return next(ext for ext, f in Image.registered_extensions().items() if f == fmt)


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", default=None,
              help="Image format of the outputs (png, jpg, webp, tiff, ...) [default: from the -o "
                   "name, else png].")
@_batch_options
def decompress(files, fmt, output, recursive, skip_existing, device, weights, force, jobs, threads, batch,
               use_ray, quiet, verbose):
    """Decompress .aec FILES (or folders of them) to images, PNG next to each input by default."""
    chosen = _pillow_format(fmt) if fmt is not None else None
    named = output is not None and output != "-" and not _is_folder_target(output) and \
        len(files) == 1 and not Path(files[0]).is_dir()
    if named and Path(output).suffix:
        from_name = _pillow_format(Path(output).suffix)
        if chosen is not None and chosen != from_name:
            raise Failure(f"--format {fmt} contradicts the output name {output}", EXIT_USAGE)
        chosen = from_name
    chosen = chosen or "PNG"
    report = Reporter(-1 if quiet else (2 if verbose else 1), len(files) > 1 or any(
        Path(i).is_dir() for i in files))
    pairs = _plan(list(files), output, _suffix_for(chosen), {".aec"}, recursive, report.warn)
    if use_ray:
        return _on_ray("decompress", pairs, report, skip_existing, jobs, batch, weights, device,
                       fmt=chosen, force=force)
    task = partial(_decompress_files, fmt=chosen, force=force)
    _run_batch(pairs, task, "decompressing", skip_existing,
               dict(weights=weights, device=device, threads=threads), _jobs(jobs, pairs), batch, report)


def _decompress_files(codec, group, *, fmt: str, force: bool):
    def prepare(inp):
        raw = _read(inp)
        codec.parse(raw)                 # a bad header fails here, alone
        return raw, len(raw)

    def finish(image, inp, out, size_in):
        import io
        buf = io.BytesIO()
        try:
            image.save(buf, format=fmt)
        except (OSError, KeyError, ValueError) as exc:
            raise OSError(f"cannot save a mode {image.mode} image as {fmt}: {exc}") from None
        _write(out, buf.getvalue(), force)
        name = "stdin" if inp == "-" else Path(inp).name
        return size_in, buf.tell(), image.width * image.height, \
            f"{name}: {image.width}x{image.height} {image.mode} -> {fmt.lower()}, {_kib(buf.tell())}"

    return _per_file(group, prepare, partial(codec.decode_many, batch=len(group)), finish)


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file (a list for several).")
@click.option("--weights", type=click.Path(exists=True, file_okay=False), default=None,
              help="A weights folder whose models count as installed (besides the shipped ones).")
def info(files, as_json, weights):
    """Show what .aec FILES hold, from their headers (no decoding)."""
    from .inspect import describe
    described, failed = [], 0
    for file in files:
        try:
            d = describe(_read(file), weights)
        except EXPECTED_ERRORS as exc:
            click.echo(f"aecodec: error: {file}: {_one_line(exc)}", err=True)
            failed += 1
            continue
        d["file"] = file
        described.append(d)
    if as_json:
        click.echo(json.dumps(described[0] if len(files) == 1 and described else described, indent=2))
    else:
        for k, d in enumerate(described):
            if k:
                click.echo("")
            quality = d["quality"] if d["quality"] else ("between two qualities (fitted to a budget)"
                                                         if d["model_installed"] else "unknown (model not installed)")
            model = ("default model" if d["default_model"] else
                     "installed, not the default" if d["model_installed"] else "not installed: cannot decode")
            detail = f"{d['detail_bytes']} bytes, step {d['detail_step']:g}" if d["detail_bytes"] else "none"
            if d["detail_tilt"]:
                detail += ", tilt {luma:g} luma, {chroma:g} colour, colour x{chroma_gain:g}".format(**d["detail_tilt"])
            if d["adaptive"]:
                detail += ", steps per block (strength {strength}, floor {floor})".format(**d["adaptive"])
            if d["near_contexts"]:
                detail += ", near-frequency contexts"
            click.echo(f"file:           {d['file']}")
            scaled = (d["coded_width"], d["coded_height"]) != (d["width"], d["height"])
            click.echo(f"size:           {d['width']}x{d['height']}"
                       + (f" (coded at {d['coded_width']}x{d['coded_height']}, scaled up)" if scaled else ""))
            click.echo(f"mode:           {d['mode']}")
            click.echo(f"quality:        {quality}")
            click.echo(f"stages:         {d['stages']}"
                       + (f", coded with zero tables {d['zero_tables']}" if d["zero_tables"] else ""))
            click.echo(f"detail layer:   {detail}")
            if d["postfilter"]:
                held = d["postfilter"]["intervals"]
                click.echo(f"post-filter:    {d['postfilter']['id']}, class {d['postfilter']['class']}"
                           + (f", held to intervals {'/'.join(map(str, held))} (1/64 step)" if held else ""))
            if d["upfilter"]:
                click.echo(f"after scaling:  filter {d['upfilter']['id']}, class {d['upfilter']['class']}")
            click.echo(f"bytes:          {d['bytes']}")
            click.echo(f"bpp:            {d['bpp']:.4f}")
            click.echo(f"stage bytes:    {' '.join(map(str, d['stage_bytes']))}")
            click.echo(f"model:          {d['model_id']} ({model})")
            click.echo(f"format version: {d['format_version']}")
    if failed:
        raise Failure(f"{failed} of {len(files)} files could not be read")


@main.command()
@click.argument("file")
@click.option("--max-bytes", type=str, required=True, help="Size budget (e.g. 20000, 20KB).")
@click.option("-o", "--output", default=None,
              help="Output file, or - for stdout [default: FILE's name with .truncated.aec].")
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output.")
def truncate(file, max_bytes, output, force):
    """Keep what of FILE fits in --max-bytes: all of it, else its detail layer goes, then
    trailing stages (a valid, coarser file). No decoding, no model."""
    from . import truncate as truncate_bytes
    budget = _parse_size(max_bytes)
    if output is None:
        if file == "-":
            raise Failure("reading standard input needs -o", EXIT_USAGE)
        output = str(Path(file).with_suffix(".truncated.aec"))
    if output == "-" and _stdout_is_terminal():
        raise Failure("refusing to write binary .aec data to a terminal: use -o FILE or redirect "
                      "standard output", EXIT_USAGE)
    if output != "-":
        _refuse_collisions([(file, output)])
        _check_creatable(Path(output).parent)
    try:
        _write(output, truncate_bytes(_read(file), budget), force)
    except EXPECTED_ERRORS as exc:
        raise Failure(f"{file}: {_one_line(exc)}") from None


def _lazy_command(module: str, name: str, help_text: str):
    """A subcommand whose module (and its heavy imports) loads only when it runs. Its
    errors read like every other command's (usage errors keep click's usage hint)."""
    @click.command(name, help=help_text, context_settings={"ignore_unknown_options": True,
                                                           "help_option_names": []}, add_help_option=False)
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    @click.pass_context
    def command(ctx, args):
        import importlib
        real = importlib.import_module(module).main
        try:
            real.main(list(args), prog_name=f"aecodec {name}", standalone_mode=False)
        except (click.UsageError, Failure):
            raise
        except click.ClickException as exc:
            raise Failure(exc.format_message(), exc.exit_code) from None
    return command


main.add_command(_lazy_command("aecodec.train.cli", "train",
                               "Train or resume a model (aecodec train CONFIG RUN_DIR; --help for more)."))
main.add_command(_lazy_command("aecodec.bench.cli", "bench",
                               "Rate-distortion benchmark against JPEG, WebP, AVIF, JPEG XL (--help for more)."))


def entry() -> None:
    """The console script: click's main, plus what a pipeline tool owes its shell (a
    closed stdout or Ctrl-C ends with a one-line message and a distinct code)."""
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aecodec: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("aecodec: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FAILED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    entry()
