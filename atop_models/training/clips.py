"""Reference multi-view motion clips: rendering, the on-disk dataset format, validation and loading.

Dataset format (version 1)
--------------------------
A *dataset* is a folder of *clip folders* (any names; sub-folders whose name contains ".tmp-" or ".old-"
are unfinished writes and are ignored). A clip folder holds::

    clip.json
    view_0/frame_00.png ... view_0/frame_{F-1:02d}.png   RGB, 8 bit, resolution x resolution
    view_0/mask.png                                       L (grey), 8 bit: first-frame visible part mask
                                                          (may be empty in a view that cannot see the part,
                                                          never in every view)
    view_1/...                                            one folder per view, 0 .. num_views-1

``clip.json`` is an object with exactly these keys:

- ``"format"``: ``"atop-reference-clip"``; ``"version"``: ``1``
- ``"prompt"``: the motion's text prompt (non-empty string)
- ``"num_views"`` (V), ``"num_frames"`` (F, at least 2; frame 0 is the rest state), ``"resolution"``
  (image width = height in pixels)
- ``"cameras"``: ``CameraRig.to_dict()`` (c2w [V][4][4] OpenGL axes in the +Z-up world, fov_deg, width,
  height, elevation_deg [V], azimuth_deg [V], distance); ``view_v`` was rendered by camera v
- ``"joint"``: ``Joint.to_dict()`` of the moving joint in the object's normalised frame, or ``null``
- ``"part"``: name of the moving part; ``"joint_values"``: [F] joint value of each frame (radians or
  normalised lengths; frame 0 = rest)
- ``"object"``: ``{"name", "category", "source"}`` of the rendered object
- ``"fraction"``: the share of the opening range reached by the last frame (informational)

Masks are 255 on the moving part's visible pixels in frame 0 (occlusion aware) and 0 elsewhere; frames are
sRGB renders on a white background. A clip is written into a temporary sibling folder and renamed into
place, so a clip folder is either complete or absent.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from ..errors import InputError
from ..geometry.cameras import DEFAULT_DISTANCE, DEFAULT_ELEVATION, imagedream_rig, world_to_pixels
from ..mesh.articulate import governing_joint, posed_vertices
from ..progress import OnStep, no_progress
from ..render.motion import opening_values, render_joint_motion
from ..types import CameraRig, Joint, PartMesh

log = logging.getLogger("atop")

FORMAT = "atop-reference-clip"
VERSION = 1
# What a clip may claim before its frames are allocated (a clip is 4 views of ~16 frames of 256 px).
MAX_VIEWS, MAX_FRAMES, MAX_RESOLUTION = 16, 256, 2048
MAX_CLIP_BYTES = 4 << 30  # of float32 frames
FRAME_MARGIN = 0.95  # the fitted camera keeps every pose inside 95% of the half-image (or the rest state's reach)


@dataclass
class ReferenceClip:
    frames: np.ndarray  # [V, F, H, W, 3] float32 0..1
    masks: np.ndarray  # [V, H, W] float32 0..1, first-frame visible part masks
    prompt: str
    rig: CameraRig
    joint: Optional[Joint]
    part: str
    joint_values: np.ndarray  # [F]
    meta: dict = field(default_factory=dict)  # "object": {name, category, source}, "fraction", "folder"

    @property
    def num_views(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[1])

    @property
    def cameras(self) -> CameraRig:  # the name the fine-tuning code reads
        return self.rig

    @property
    def name(self) -> str:
        return str(self.meta.get("folder") or self.meta.get("object", {}).get("name", ""))


# --- rendering -----------------------------------------------------------------------------------------------
def _fit_rig(poses: list[np.ndarray], resolution: int, elevation_deg: float) -> CameraRig:
    """ImageDream's rig at the default distance, moved back only as far as needed for every pose to stay
    inside the images (an opened lid or door can leave the unit box the rest state fits in)."""
    pts = np.concatenate(poses)  # [N, 3]
    distance = DEFAULT_DISTANCE

    def reach(rig: CameraRig, points: np.ndarray) -> float:  # largest |offset| from the centre, 1 = border
        px, depth = world_to_pixels(rig, points)
        half = np.array([rig.width, rig.height]) / 2
        return float(np.abs((px - half) / half).max()) if np.all(depth > 0) else np.inf

    # allowed reach: the margin, or what the rest state already fills at the default distance
    allowed = max(FRAME_MARGIN, min(1.0, reach(imagedream_rig(elevation_deg=elevation_deg, resolution=resolution,
                                                              distance=distance), poses[0])))
    for _ in range(100):
        rig = imagedream_rig(elevation_deg=elevation_deg, resolution=resolution, distance=distance)
        if reach(rig, pts) <= allowed:
            break
        distance *= 1.03  # small steps: the closest distance that fits, within 3%
    if distance > DEFAULT_DISTANCE:
        log.info("reference clip: camera distance raised from %.2f to %.2f so the whole motion stays in view",
                 DEFAULT_DISTANCE, distance)
    return rig


def render_reference_clip(mesh: PartMesh, part: str, *, num_frames: int = 10, fraction: float = 1.0,
                          rig: CameraRig | None = None, prompt: str | None = None, resolution: int = 256,
                          elevation_deg: float = DEFAULT_ELEVATION, joint: Joint | None = None,
                          on_step: Optional[OnStep] = None) -> ReferenceClip:
    """Render ``part`` opening along its ground-truth joint (or ``joint``, e.g. an estimated one for a part
    painted with PartFromMasks): joint values evenly from rest (0) to ``fraction`` of the opening range,
    from every camera of ``rig``. ``rig=None`` uses ImageDream's rig (4 views, ``elevation_deg``,
    ``resolution``) at the default distance, moved back only when the moving part would leave the images.
    An empty ``prompt`` uses ``default_prompt``."""
    from ..mesh.procedural import default_prompt

    part = mesh.part_names[mesh.part_index(part)]
    joint = governing_joint(mesh, part) if joint is None else joint.replace(child=part)
    if joint is None:
        moving = [j.child for j in mesh.joints]
        raise InputError(f"part '{part}' has no joint (it does not move); articulated parts: "
                         f"{', '.join(moving) if moving else 'none (this mesh has no ground-truth joints)'}; "
                         "choose one of those")
    if not np.isfinite(fraction) or not 0.0 < fraction <= 1.0:
        raise InputError(f"the opening fraction must be in (0, 1], got {fraction}; 1 = fully open")
    if int(num_frames) < 2:
        raise InputError(f"a clip needs at least 2 frames, got {num_frames}")
    values = opening_values(joint, int(num_frames), float(fraction))  # [F]
    if rig is None:
        joints = [joint] + [j for j in mesh.joints if j.child != joint.child]
        poses = [posed_vertices(mesh, {joint.child: float(v)}, joints) for v in values]
        rig = _fit_rig(poses, int(resolution), float(elevation_deg))
    if rig.width != rig.height:
        raise InputError(f"reference clips are square; the camera rig is {rig.width}x{rig.height}")
    text = prompt.strip() if prompt and prompt.strip() else default_prompt(mesh, part)
    video = render_joint_motion(mesh, joint, values, rig, prompt=text, on_step=on_step)
    meta = {"object": {"name": mesh.name, "category": mesh.category, "source": mesh.source_path},
            "fraction": float(fraction)}
    return ReferenceClip(frames=video.frames.astype(np.float32), masks=video.part_masks.astype(np.float32),
                         prompt=text, rig=rig, joint=joint, part=part, joint_values=values, meta=meta)


# --- writing -------------------------------------------------------------------------------------------------
def _to_u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def clip_json(clip: ReferenceClip) -> dict:
    V, F, H, W, _ = clip.frames.shape
    obj = dict(clip.meta.get("object") or {})
    return {
        "format": FORMAT, "version": VERSION, "prompt": clip.prompt, "num_views": int(V), "num_frames": int(F),
        "resolution": int(H), "cameras": clip.rig.to_dict(),
        "joint": None if clip.joint is None else clip.joint.to_dict(), "part": clip.part,
        "joint_values": [float(v) for v in clip.joint_values],
        "object": {"name": str(obj.get("name", "")), "category": str(obj.get("category", "")),
                   "source": str(obj.get("source", ""))},
        "fraction": float(clip.meta.get("fraction", 1.0)),
    }


def write_clip(clip: ReferenceClip, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``clip`` as a clip folder (format in the module doc), atomically: everything goes into a
    temporary sibling folder that is renamed into place. An existing folder is an error unless ``overwrite``."""
    folder = Path(folder)
    frames = np.asarray(clip.frames)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise InputError(f"clip frames must be [V, F, H, W, 3], got {list(frames.shape)}")
    V, F, H, W, _ = frames.shape
    if H != W:
        raise InputError(f"reference clips are square; frames are {W}x{H}")
    if np.asarray(clip.masks).shape != (V, H, W):
        raise InputError(f"clip masks must be [V, H, W] = {[V, H, W]}, got {list(np.asarray(clip.masks).shape)}")
    if len(clip.joint_values) != F:
        raise InputError(f"clip has {F} frames but {len(clip.joint_values)} joint values")
    if clip.rig.num_views != V:
        raise InputError(f"clip has {V} views but its rig has {clip.rig.num_views} cameras")
    if folder.exists() and not overwrite:
        raise InputError(f"clip folder '{folder}' already exists; choose another name or allow overwriting")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        for v in range(V):
            vd = tmp / f"view_{v}"
            vd.mkdir()
            for f in range(F):
                Image.fromarray(_to_u8(frames[v, f]), "RGB").save(vd / f"frame_{f:02d}.png")
            Image.fromarray(_to_u8(clip.masks[v]), "L").save(vd / "mask.png")
        with open(tmp / "clip.json", "w", encoding="utf-8") as fh:
            json.dump(clip_json(clip), fh, indent=1)
        old = None
        if folder.exists():
            old = folder.parent / f"{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(folder, old)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


# --- reading and validation ----------------------------------------------------------------------------------
_REQUIRED = {"format": str, "version": int, "prompt": str, "num_views": int, "num_frames": int,
             "resolution": int, "cameras": dict, "part": str, "joint_values": list, "object": dict}


def _read_png(path: Path, mode: str, size: int, problems: list[str], where: str) -> Optional[np.ndarray]:
    if not path.is_file():
        problems.append(f"{where}: missing {path.name}")
        return None
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != mode:
                problems.append(f"{where}: {path.name} is {im.mode}, expected {mode} 8-bit")
                return None
            if im.size != (size, size):
                problems.append(f"{where}: {path.name} is {im.size[0]}x{im.size[1]}, expected {size}x{size}")
                return None
            return np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # PIL raises several types for damaged files
        problems.append(f"{where}: {path.name} is unreadable ({type(exc).__name__}: {str(exc)[:80]})")
        return None


def _read(folder: Path) -> tuple[Optional[ReferenceClip], list[str]]:
    """The clip and every problem found (the clip is None when there is any)."""
    problems: list[str] = []
    name = str(folder)
    meta_path = folder / "clip.json"
    if not meta_path.is_file():
        return None, [f"{name}: missing clip.json"]
    try:
        with open(meta_path, encoding="utf-8") as fh:
            d = json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:  # ValueError covers JSON and text decoding
        return None, [f"{name}: clip.json is not valid JSON ({type(exc).__name__}: {str(exc)[:100]})"]
    if not isinstance(d, dict):
        return None, [f"{name}: clip.json must hold an object"]
    for key, typ in _REQUIRED.items():
        if key not in d:
            problems.append(f"{name}: clip.json lacks '{key}'")
        elif not isinstance(d[key], typ) or (typ is int and isinstance(d[key], bool)):
            problems.append(f"{name}: clip.json '{key}' must be {typ.__name__}, got {type(d[key]).__name__}")
    if problems:
        return None, problems
    if d["format"] != FORMAT or d["version"] != VERSION:
        return None, [f"{name}: clip.json is format '{d['format']}' version {d['version']}, expected '{FORMAT}' "
                      f"version {VERSION}"]
    V, F, R = d["num_views"], d["num_frames"], d["resolution"]
    if V < 1 or F < 2 or R < 8:
        return None, [f"{name}: needs num_views >= 1, num_frames >= 2, resolution >= 8; got {V}, {F}, {R}"]
    if V > MAX_VIEWS or F > MAX_FRAMES or R > MAX_RESOLUTION or V * F * R * R * 12 > MAX_CLIP_BYTES:
        return None, [f"{name}: clip.json claims num_views {V}, num_frames {F}, resolution {R}; a clip has at most "
                      f"{MAX_VIEWS} views, {MAX_FRAMES} frames, {MAX_RESOLUTION} px and {MAX_CLIP_BYTES >> 30} GiB "
                      "of frames; fix clip.json"]
    if not d["prompt"].strip():
        problems.append(f"{name}: empty prompt")
    if len(d["joint_values"]) != F:
        problems.append(f"{name}: {len(d['joint_values'])} joint values for {F} frames")
    elif not all(isinstance(v, (int, float)) and math.isfinite(v) for v in d["joint_values"]):
        problems.append(f"{name}: clip.json joint_values are not all finite numbers")
    rig = joint = None
    try:
        rig = CameraRig.from_dict(d["cameras"])
        if not np.isfinite(rig.c2w).all():
            problems.append(f"{name}: clip.json cameras hold values that are not finite")
        elif rig.c2w.shape != (V, 4, 4) or (rig.width, rig.height) != (R, R):
            problems.append(f"{name}: cameras are {rig.c2w.shape[0]} of {rig.width}x{rig.height}, expected {V} of "
                            f"{R}x{R}")
    except Exception as exc:
        problems.append(f"{name}: bad 'cameras' ({type(exc).__name__}: {str(exc)[:80]})")
    if d.get("joint") is not None:
        try:
            joint = Joint.from_dict(d["joint"])
        except Exception as exc:
            problems.append(f"{name}: bad 'joint' ({type(exc).__name__}: {str(exc)[:80]})")
    frames = np.zeros((V, F, R, R, 3), dtype=np.float32)
    masks = np.zeros((V, R, R), dtype=np.float32)
    mask_read = 0
    for v in range(V):
        vd = folder / f"view_{v}"
        if not vd.is_dir():
            problems.append(f"{name}: missing folder view_{v}")
            continue
        for f in range(F):
            img = _read_png(vd / f"frame_{f:02d}.png", "RGB", R, problems, f"{name}/view_{v}")
            if img is not None:
                frames[v, f] = img.astype(np.float32) / 255.0
        m = _read_png(vd / "mask.png", "L", R, problems, f"{name}/view_{v}")
        if m is not None:
            masks[v] = m.astype(np.float32) / 255.0
            mask_read += 1
    if mask_read == V and not masks.any():  # a view may not see the part (a door from behind); all may not
        problems.append(f"{name}: every view's mask.png is empty (the moving part is visible nowhere)")
    if problems:
        return None, problems
    meta = {"object": dict(d["object"]), "fraction": float(d.get("fraction", 1.0)), "folder": folder.name}
    return ReferenceClip(frames=frames, masks=masks, prompt=d["prompt"], rig=rig, joint=joint, part=d["part"],
                         joint_values=np.asarray(d["joint_values"], dtype=np.float64), meta=meta), []


def read_clip(folder: str | os.PathLike) -> ReferenceClip:
    """Read one clip folder, checking everything; an InputError lists every problem found."""
    clip, problems = _read(Path(folder))
    if problems:
        raise InputError(f"reference clip '{folder}' is invalid ({len(problems)} problems): " + "; ".join(problems)
                         + "; re-render the clip or fix the files")
    return clip


def _clip_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and ".tmp-" not in p.name and ".old-" not in p.name)


def _scan(folder: Path) -> tuple[list[ReferenceClip], list[str]]:
    if not folder.is_dir():
        return [], [f"dataset folder '{folder}' does not exist or is not a folder"]
    subs = _clip_folders(folder)
    if not subs:
        return [], [f"dataset folder '{folder}' holds no clip folders"]
    clips, problems = [], []
    for sub in subs:
        clip, found = _read(sub)
        problems += found
        if clip is not None:
            clips.append(clip)
    views = sorted({c.num_views for c in clips})
    if len(views) > 1:
        problems.append(f"clips have different view counts {views}; fine-tuning needs one camera rig layout")
    return clips, problems


def validate_dataset(folder: str | os.PathLike) -> list[str]:
    """Every problem of a dataset folder at once (empty list = valid)."""
    return _scan(Path(folder))[1]


def load_dataset(folder: str | os.PathLike) -> list[ReferenceClip]:
    """All clips of a dataset folder; an InputError lists every problem when there is any."""
    clips, problems = _scan(Path(folder))
    if problems:
        shown = problems[:40]
        more = f"; ... and {len(problems) - 40} more" if len(problems) > 40 else ""
        raise InputError(f"reference-clip dataset '{folder}' has {len(problems)} problems: " + "; ".join(shown)
                         + more + "; re-render or remove the broken clips")
    return clips


# --- procedural datasets -------------------------------------------------------------------------------------
def make_procedural_dataset(out_dir: str | os.PathLike, categories, clips_per_category: int, seed: int,
                            num_frames: int = 10, resolution: int = 256, *, fraction: float = 1.0,
                            elevation_deg: float = DEFAULT_ELEVATION, overwrite: bool = False,
                            on_step: OnStep = no_progress) -> list[Path]:
    """Fine-tuning data: ``clips_per_category`` procedural objects per category, each with one of its
    articulated parts (chosen by the seed) opening fully, written as clip folders
    ``<out_dir>/<category>_<i:03d>``. Deterministic for a given ``seed``."""
    from ..mesh.procedural import CATEGORIES, make_object

    categories = [categories] if isinstance(categories, str) else list(categories)
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown or not categories:
        raise InputError(f"unknown procedural categories {unknown or '(none given)'}; choose from: "
                         f"{', '.join(CATEGORIES)}")
    if clips_per_category < 1:
        raise InputError(f"clips_per_category must be at least 1, got {clips_per_category}")
    out = Path(out_dir)
    total, done, paths = len(categories) * clips_per_category, 0, []
    for cat in categories:
        for i in range(clips_per_category):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(cat.encode()), i]))
            mesh = make_object(cat, int(rng.integers(0, 2**31 - 1)))
            part = mesh.joints[int(rng.integers(len(mesh.joints)))].child
            clip = render_reference_clip(mesh, part, num_frames=num_frames, fraction=fraction,
                                         resolution=resolution, elevation_deg=elevation_deg)
            paths.append(write_clip(clip, out / f"{cat}_{i:03d}", overwrite=overwrite))
            done += 1
            on_step(done, total, clip.frames[0, -1])
    log.info("procedural dataset: %d clips in %s", len(paths), out)
    return paths
