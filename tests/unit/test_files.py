"""Atomic writes end with the permissions a plain write would give: 0666/0777 less the umask, or the mode of
the file they replace."""
import os
import stat

import numpy as np
import pytest
from PIL import Image

from atop_models.export.animated_glb import write_animated_glb
from atop_models.export.contact_sheet import save_png_atomic
from atop_models.export.glb import write_glb
from atop_models.export.urdf import write_urdf
from atop_models.files import atomic_path, write_bytes_atomic
from atop_models.mesh.procedural import make_object


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_files_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    (tmp_path / "plain.bin").write_bytes(b"x")
    write_bytes_atomic(tmp_path / "atomic.bin", b"x")
    assert mode(tmp_path / "atomic.bin") == mode(tmp_path / "plain.bin") == 0o666 & ~mask
    assert sorted(os.listdir(tmp_path)) == ["atomic.bin", "plain.bin"]  # no temporary left behind


def test_replacing_keeps_the_files_mode_and_failures_leave_nothing(tmp_path, umask):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new" and mode(target) == 0o640
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]


def test_outputs_follow_the_umask(tmp_path, umask):
    umask(0o022)
    mesh = make_object("cabinet", 0)
    joint = mesh.joints[0]
    files = [write_animated_glb(mesh, joint, tmp_path / "animated.glb", frames=4),
             write_glb(mesh, tmp_path / "mesh.glb"),
             save_png_atomic(Image.fromarray(np.zeros((4, 4, 3), np.uint8)), tmp_path / "sheet.png")]
    urdf = write_urdf(mesh, joint, tmp_path / "urdf")
    for f in files:
        assert mode(f) == 0o644, f
    assert mode(urdf.parent) == 0o755
    for dirpath, dirs, names in os.walk(urdf.parent):
        assert mode(dirpath) == 0o755, dirpath
        for n in names:
            assert mode(os.path.join(dirpath, n)) == 0o644, n
    write_urdf(mesh, joint, tmp_path / "urdf")  # replacing a folder leaves no temporary beside it
    assert sorted(os.listdir(tmp_path)) == ["animated.glb", "mesh.glb", "sheet.png", "urdf"]
