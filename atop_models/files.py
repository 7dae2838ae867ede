"""Atomic file writes: a file or folder is either complete or absent, never half-written.

The finished file has the permissions a plain write would give it: those of the file it replaces, else
0666 (folders 0777) less the process's umask. (``tempfile.mkstemp``/``mkdtemp`` make private 0600/0700
files, which other users of a shared ComfyUI output folder could not read.)
"""
from __future__ import annotations

import os
import shutil
import stat
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import InputError


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def _keep_mode(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the mode of the ``path`` it replaces (a plain write keeps an existing file's mode)."""
    try:
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    except FileNotFoundError:
        pass


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; when the block succeeds it replaces ``path``, when it fails
    the temporary file is removed. An unwritable folder is an InputError that says so."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_name(path)
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies
    except OSError as exc:
        raise InputError(f"cannot write '{path}': {exc.strerror or exc}; choose a writable output folder") from exc
    try:
        yield tmp
        _keep_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def new_temp_folder(path: str | os.PathLike) -> Path:
    """An empty hidden folder beside ``path`` with a plain folder's permissions (0777 less the umask), to be
    filled and then moved into place with ``replace_folder``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    os.mkdir(tmp, 0o777)  # the umask applies
    return tmp


def replace_folder(tmp: Path, path: str | os.PathLike) -> None:
    """Moves the finished folder ``tmp`` to ``path``, replacing what is there; the old folder is removed
    only once the new one is in place (restored if the move fails)."""
    path = Path(path)
    old = None
    if path.exists():
        old = _temp_name(path).with_suffix(".old")
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
