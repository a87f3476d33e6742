"""Output files: atomic, exclusive without --force, umask-honouring, link-preserving."""
import os
import stat

import pytest

from aecodec import outputs
from aecodec.outputs import write_file


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.aec"
    target.write_bytes(b"old")

    def interrupted(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file(target, b"new", force=True)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.aec"]


def test_refuses_an_existing_file_without_force(tmp_path):
    target = tmp_path / "out.aec"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--force"):
        write_file(target, b"new")
    assert target.read_bytes() == b"precious"
    write_file(target, b"new", force=True)
    assert target.read_bytes() == b"new"


def test_a_file_created_meanwhile_is_not_clobbered(tmp_path, monkeypatch):
    """The race of two runs: the name is free when checked, taken when written."""
    target = tmp_path / "out.aec"
    real_link = os.link

    def someone_else_first(src, dst):
        with open(dst, "wb") as f:
            f.write(b"the other run")
        real_link(src, dst)
    monkeypatch.setattr(os, "link", someone_else_first)
    with pytest.raises(FileExistsError):
        write_file(target, b"mine")
    assert target.read_bytes() == b"the other run"
    assert [p.name for p in tmp_path.iterdir()] == ["out.aec"]


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_permissions_follow_the_umask(tmp_path, monkeypatch, mask):
    monkeypatch.setattr(outputs, "_umask", lambda: mask)
    target = tmp_path / "out.aec"
    write_file(target, b"x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_real_umask_is_read(tmp_path):
    old = os.umask(0o027)
    try:
        write_file(tmp_path / "a", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o640


def test_force_onto_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.aec"
    real.write_bytes(b"old")
    link = tmp_path / "link.aec"
    link.symlink_to(real)
    write_file(link, b"new", force=True)
    assert link.is_symlink() and real.read_bytes() == b"new"
    with pytest.raises(FileExistsError):
        write_file(link, b"newer")                 # a link is an existing output too
