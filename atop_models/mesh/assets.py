"""The files an asset refers to (URDF meshes, OBJ material libraries and textures, glTF buffers and images)
are read from inside the asset's own folder only, whatever trimesh's own rules are.

An asset's root is the folder the user's file lies in, widened to the object or package it belongs to: the
nearest of it and its two parents that holds ``mobility.urdf`` (a PartNet-Mobility object, whose
``textured_objs/*.mtl`` name ``../images/...``) or ``package.xml`` (a ROS package), else the parent of a
folder named ``urdf`` (the ``urdf/`` beside ``meshes/`` layout). A reference that leaves the root (an
absolute system path, a ``../`` chain climbing above it) is refused; when its trailing path parts exist
inside the root (an absolute path from the author's machine, ``/Users/x/obj/images/t.jpg``), that file is
used instead, and the loader says so.
"""
from __future__ import annotations

import io
import logging
import os
import urllib.parse
import warnings

import trimesh

log = logging.getLogger("atop")

ROOT_MARKERS = ("mobility.urdf", "package.xml")
# Folder names of the ROS description layout whose meshes sit in a sibling folder (../meshes/).
DESCRIPTION_FOLDERS = ("urdf", "urdfs", "robots")
MARKER_LEVELS = 3  # the file's folder and two above
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tga", ".tif", ".tiff", ".gif", ".webp")
MAX_TEXTURE_PIXELS = 8192 * 8192  # larger images are decompression bombs here, not textures


def asset_root(path: str | os.PathLike) -> str:
    """The folder whose files ``path`` may refer to (see the module doc); a real path."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    d = folder
    for _ in range(MARKER_LEVELS):
        if any(os.path.isfile(os.path.join(d, m)) for m in ROOT_MARKERS):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    if os.path.basename(folder).lower() in DESCRIPTION_FOLDERS:
        return os.path.dirname(folder)
    return folder


def is_inside(root: str, path: str) -> bool:
    """Whether ``path`` (symlinks resolved) lies in ``root`` (a real path)."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _tails(name: str) -> list[str]:
    """Trailing parts of a path, longest first, without its root, drive and '..' parts."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if parts and parts[0].endswith(":"):  # a Windows drive
        parts = parts[1:]
    return [os.path.join(*parts[i:]) for i in range(len(parts))]


def locate(name: str, folder: str, root: str) -> tuple[str | None, str]:
    """Find the file a reference ``name`` (relative to ``folder``, or absolute) means, inside ``root``.

    Returns (path, how): how is "direct"; "relocated" when the path as written leaves the root or does not
    exist but its trailing parts name a file inside the root (looked up in ``folder``, then in ``root``);
    or (None, "outside" | "missing").
    """
    raw = name.strip()
    if raw.startswith("file://"):
        raw = raw[len("file://"):]
    outside = False
    for c in [raw] + ([urllib.parse.unquote(raw)] if "%" in raw else []):
        path = os.path.join(folder, os.path.expanduser(c))
        if not is_inside(root, path):
            outside = True
        elif os.path.isfile(path):
            return os.path.normpath(path), "direct"
    for tail in _tails(raw):
        for base in (folder, root):
            path = os.path.join(base, tail)
            if is_inside(root, path) and os.path.isfile(path):
                return os.path.normpath(path), "relocated"
    return None, "outside" if outside else "missing"


def check_image(data: bytes, decode: bool = True) -> str:
    """Why image bytes cannot be a texture ('' when they can): their header, and with ``decode`` their
    pixels (trimesh drops a texture it cannot decode without a word)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
                if w * h > MAX_TEXTURE_PIXELS:
                    return f"an image of {w} x {h} pixels, more than the {MAX_TEXTURE_PIXELS:,} a texture may have"
                if decode:
                    img.load()
    except Image.DecompressionBombError:
        return f"an image of more than the {MAX_TEXTURE_PIXELS:,} pixels a texture may have (a decompression bomb)"
    except Exception as exc:  # PIL raises several types for unreadable or truncated images
        return f"not a readable image ({type(exc).__name__}: {str(exc)[:100]})"
    return ""


class AssetResolver(trimesh.resolvers.Resolver):
    """A trimesh resolver that serves files of ``root`` only, relative to ``folder`` (the folder of the file
    being read). It records what it refused as (name, why) in ``problems`` and what it found elsewhere as
    (name, found) in ``relocated``, so the loader can say so.
    """

    def __init__(self, folder: str, root: str, problems: list | None = None, relocated: list | None = None,
                 images: dict | None = None):
        self.parent = os.path.abspath(folder)
        self.root = os.path.realpath(root)
        self.file_path = self.parent
        self.file_name = None
        self.problems: list[tuple[str, str]] = [] if problems is None else problems  # shared with namespaced()
        self.relocated: list[tuple[str, str]] = [] if relocated is None else relocated
        self.images: dict[str, str] = {} if images is None else images  # path -> check_image verdict

    def get(self, name: str) -> bytes:
        name = str(name).strip()
        path, how = locate(name, self.parent, self.root)
        if path is None:
            why = (f"lies outside the asset folder '{self.root}' and was refused" if how == "outside"
                   else "was not found")
            self.problems.append((name, why))
            raise FileNotFoundError(name)
        with open(path, "rb") as fh:
            data = fh.read()
        if os.path.splitext(path)[1].lower() in IMAGE_EXTS:
            if path not in self.images:
                self.images[path] = check_image(data)
            bad = self.images[path]
            if bad:
                self.problems.append((name, f"is {bad}"))
                raise ValueError(f"{name}: {bad}")
        if how == "relocated":
            self.relocated.append((name, os.path.relpath(path, self.root)))
        return data

    def write(self, name: str, data) -> None:
        raise PermissionError("asset files are read-only")

    def namespaced(self, namespace: str) -> "AssetResolver":
        return AssetResolver(os.path.join(self.parent, namespace), self.root, self.problems, self.relocated,
                             self.images)

    def keys(self):
        for path, _, names in os.walk(self.root):
            for n in names:
                yield os.path.relpath(os.path.join(path, n), self.parent)
