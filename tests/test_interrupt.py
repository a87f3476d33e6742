"""Ctrl-C on a parallel batch stops promptly and leaves nothing half-written."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from conftest import sample_photo


def test_sigint_with_two_jobs_stops_promptly(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    photo = sample_photo("astronaut")
    for i in range(40):
        Image.fromarray(np.roll(photo, 13 * i, axis=1)[:256, :256]).save(src / f"p{i:02d}.png")
    proc = subprocess.Popen([sys.executable, "-c", "from aecodec.cli import entry; entry()", "compress",
                             str(src), "-o", str(out), "-j", "2", "-q", "6", "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (out.is_dir() and any(out.glob("*.aec"))):
        time.sleep(0.2)
    assert proc.poll() is None, "finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGINT)
    t0 = time.time()
    _, err = proc.communicate(timeout=60)
    assert time.time() - t0 < 30, "took too long to stop"
    assert proc.returncode == 130 and "interrupted" in err
    written = sorted(p.name for p in out.iterdir())
    assert all(name.endswith(".aec") and not name.startswith(".") for name in written), written
    assert len(written) < 40
    for name in written:                          # every file there is whole
        from aecodec.format import parse
        parse((out / name).read_bytes())
