"""Writing output files so that nothing is lost or half-written.

- A file appears under its name only once it is complete (temporary file + rename).
- Without ``force`` the final step is ``os.link``, which fails if the name exists:
  two concurrent runs cannot both "succeed" onto one path (a check-then-rename can).
- Permissions follow the umask, as with any tool that calls ``open(..., 0o666)``
  (``mkstemp`` alone would leave 0600).
- With ``force`` onto a symbolic link, the link's target is replaced and the link
  kept, as cwebp and cp do.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)     # no /proc: read it the portable way and put it back
    os.umask(mask)
    return mask


def write_file(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; refuse an existing path unless ``force``."""
    path = Path(path)
    if force and path.is_symlink():
        path = Path(os.path.realpath(path))
    if not force and os.path.lexists(path):
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)           # atomic, and fails if the name was taken meanwhile
            except FileExistsError:
                raise FileExistsError(f"{path} exists (use --force to overwrite)") from None
            except OSError:                  # a file system without hard links
                if os.path.lexists(path):
                    raise FileExistsError(f"{path} exists (use --force to overwrite)") from None
                os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
