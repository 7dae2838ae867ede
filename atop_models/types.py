"""Dataclasses passed between the stages of the pipeline.

Conventions (see DESIGN.md section 4):
- World frame: right-handed, +Z up. Meshes are stored in the *normalised* frame (object centred, largest
  extent scaled to ``NORMALISED_EXTENT``); ``normalized_from_source`` maps source-file coordinates into it.
- Cameras: camera-to-world 4x4 with OpenGL camera axes (+x right, +y up, looking along -z).
- Joints: ``axis`` is a unit vector in the normalised frame, ``origin`` any point on the axis; a positive
  joint value opens the part (moves it toward ``limits[1]``). Limits are radians or normalised-frame lengths.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

NORMALISED_EXTENT = 1.0  # largest bounding-box side of a normalised object

JointType = Literal["revolute", "prismatic"]
JOINT_TYPES: tuple[str, ...] = ("revolute", "prismatic")


@dataclass
class Material:
    """Base colour (linear 0..1 RGBA) and an optional texture image (uint8 [H, W, 3|4])."""

    name: str = "default"
    base_color: np.ndarray = field(default_factory=lambda: np.array([0.8, 0.8, 0.8, 1.0]))  # [4]
    texture: Optional[np.ndarray] = None  # [H, W, 3|4] uint8


@dataclass
class Joint:
    """One joint in the normalised frame.

    ``child`` is the part moved by the joint (with every part attached below it); ``parent`` the part it
    hangs from (None for the static base). ``limits`` = (lower, upper). Estimation results also carry a
    ``score`` (lower is better), the ``method`` that produced them and ranked ``candidates``.
    """

    type: str  # "revolute" | "prismatic"
    axis: np.ndarray  # [3] unit
    origin: np.ndarray  # [3] point on the axis (meaningless for prismatic)
    limits: tuple[float, float] = (0.0, 0.0)
    child: str = ""
    parent: Optional[str] = None
    name: str = ""
    score: Optional[float] = None
    method: str = ""
    candidates: list[dict] = field(default_factory=list)
    amounts: Optional[np.ndarray] = None  # [F] per-frame joint values, when estimated from a sequence

    def __post_init__(self) -> None:
        if self.type not in JOINT_TYPES:
            raise ValueError(f"joint type must be one of {JOINT_TYPES}, got {self.type!r}")
        self.axis = np.asarray(self.axis, dtype=np.float64).reshape(3)
        norm = float(np.linalg.norm(self.axis))
        if not np.isfinite(norm) or norm < 1e-12:
            raise ValueError(f"joint axis must be a finite non-zero vector, got {self.axis.tolist()}")
        self.axis = self.axis / norm
        self.origin = np.asarray(self.origin, dtype=np.float64).reshape(3)
        self.limits = (float(self.limits[0]), float(self.limits[1]))

    def replace(self, **changes) -> "Joint":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "type": self.type,
            "axis": [float(v) for v in self.axis],
            "origin": [float(v) for v in self.origin],
            "limits": [float(self.limits[0]), float(self.limits[1])],
            "child": self.child,
            "parent": self.parent,
        }
        if self.score is not None:
            out["score"] = float(self.score)
        if self.method:
            out["method"] = self.method
        if self.amounts is not None:
            out["amounts"] = [float(v) for v in self.amounts]
        if self.candidates:
            out["candidates"] = self.candidates
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Joint":
        return cls(
            type=d["type"], axis=d["axis"], origin=d["origin"], limits=tuple(d.get("limits", (0.0, 0.0))),
            child=d.get("child", ""), parent=d.get("parent"), name=d.get("name", ""), score=d.get("score"),
            method=d.get("method", ""), candidates=list(d.get("candidates", [])),
            amounts=None if d.get("amounts") is None else np.asarray(d["amounts"], dtype=np.float64),
        )


@dataclass
class PartMesh:
    """A segmented mesh in the normalised frame.

    Visuals: each face has a material (``face_material``); vertices may carry UVs (per vertex, so seams
    are split into separate vertices by the loaders) and/or vertex colours. Ground-truth ``joints`` are
    present when the source knows them (URDF, procedural objects).
    """

    vertices: np.ndarray  # [V, 3] float64, normalised frame
    faces: np.ndarray  # [F, 3] int64
    face_part: np.ndarray  # [F] int64 index into part_names
    part_names: list[str]
    materials: list[Material] = field(default_factory=lambda: [Material()])
    face_material: Optional[np.ndarray] = None  # [F] int64 index into materials (None -> all 0)
    uv: Optional[np.ndarray] = None  # [V, 2] float
    vertex_colors: Optional[np.ndarray] = None  # [V, 4] float 0..1
    normalized_from_source: np.ndarray = field(default_factory=lambda: np.eye(4))  # [4, 4]
    source_path: str = ""
    source_format: str = ""
    joints: list[Joint] = field(default_factory=list)
    name: str = "object"
    category: str = ""
    # Rigid attachments without a joint (URDF fixed joints): child part/link -> parent part/link.
    attached: dict[str, str] = field(default_factory=dict)
    # What loading had to leave out or find elsewhere (a refused texture, a missing material file).
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64)
        self.faces = np.asarray(self.faces, dtype=np.int64)
        self.face_part = np.asarray(self.face_part, dtype=np.int64)
        if self.face_material is None:
            self.face_material = np.zeros(len(self.faces), dtype=np.int64)

    # --- parts -------------------------------------------------------------------------------------
    def part_index(self, name: str) -> int:
        """Index of a part by name (exact, then case-insensitive); a clear error lists the parts."""
        if name in self.part_names:
            return self.part_names.index(name)
        lowered = [p.lower() for p in self.part_names]
        if name.strip().lower() in lowered:
            return lowered.index(name.strip().lower())
        from .errors import InputError

        raise InputError(f"part '{name}' not found; parts are: {', '.join(self.part_names)}")

    def part_face_mask(self, names: list[str] | str) -> np.ndarray:  # [F] bool
        names = [names] if isinstance(names, str) else names
        idx = [self.part_index(n) for n in names]
        return np.isin(self.face_part, idx)

    def joint_for_part(self, name: str) -> Optional[Joint]:
        for j in self.joints:
            if j.child == name:
                return j
        return None

    def parts_moved_by(self, joint: Joint) -> list[str]:
        """The joint's child part and every part attached below it through other joints or rigidly."""
        moved, frontier = {joint.child}, [joint.child]
        while frontier:
            parent = frontier.pop()
            below = [j.child for j in self.joints if j.parent == parent]
            below += [c for c, p in self.attached.items() if p == parent]
            for child in below:
                if child not in moved:
                    moved.add(child)
                    frontier.append(child)
        return [p for p in self.part_names if p in moved]

    @property
    def bbox_diagonal(self) -> float:
        lo, hi = self.vertices.min(0), self.vertices.max(0)
        return float(np.linalg.norm(hi - lo))

    def copy(self) -> "PartMesh":
        return dataclasses.replace(
            self, vertices=self.vertices.copy(), joints=[j.replace() for j in self.joints],
            attached=dict(self.attached),
        )


@dataclass
class CameraRig:
    """Pinhole cameras sharing one image size and vertical field of view.

    ``c2w`` uses OpenGL camera axes in the +Z-up world (ImageDream's convention, notes/imagedream.md s.6).
    """

    c2w: np.ndarray  # [V, 4, 4]
    fov_deg: float  # vertical field of view
    width: int
    height: int
    elevation_deg: np.ndarray  # [V]
    azimuth_deg: np.ndarray  # [V]
    distance: float

    @property
    def num_views(self) -> int:
        return int(self.c2w.shape[0])

    def intrinsics(self) -> np.ndarray:  # [V, 3, 3] pixel-space K (OpenCV style: +y down in the image)
        f = 0.5 * self.height / np.tan(np.deg2rad(self.fov_deg) / 2)
        K = np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1]], dtype=np.float64)
        return np.repeat(K[None], self.num_views, axis=0)

    def model_camera_vectors(self) -> np.ndarray:  # [V, 16] ImageDream's camera input
        from .geometry.cameras import imagedream_camera_vector

        return imagedream_camera_vector(self.c2w)

    def to_dict(self) -> dict:
        return {
            "c2w": self.c2w.tolist(), "fov_deg": self.fov_deg, "width": self.width, "height": self.height,
            "elevation_deg": np.asarray(self.elevation_deg).tolist(),
            "azimuth_deg": np.asarray(self.azimuth_deg).tolist(), "distance": self.distance,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CameraRig":
        return cls(
            c2w=np.asarray(d["c2w"], dtype=np.float64), fov_deg=float(d["fov_deg"]), width=int(d["width"]),
            height=int(d["height"]), elevation_deg=np.asarray(d["elevation_deg"], dtype=np.float64),
            azimuth_deg=np.asarray(d["azimuth_deg"], dtype=np.float64), distance=float(d["distance"]),
        )


@dataclass
class MultiViewVideo:
    """Multi-view motion: ``frames[v, f]`` is view v at frame f (frame 0 = rest state)."""

    frames: np.ndarray  # [V, F, H, W, 3] float32 0..1
    rig: CameraRig
    prompt: str = ""
    latents: Optional[np.ndarray] = None  # [V, F, 4, h, w] scaled VAE latents, when generated by the model
    part_masks: Optional[np.ndarray] = None  # [V, H, W] float 0..1, first-frame part masks

    @property
    def num_views(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[1])


@dataclass
class PointSequence:
    """Per-frame point clouds of an object whose part moves; frame 0 is the rest state.

    ``moving[f, n]`` marks points of the moving part. ``track_ids[f, n]`` identifies the same physical
    point across frames (-1 where unknown); None when there is no correspondence at all.
    """

    points: np.ndarray  # [F, N, 3] float64, normalised frame
    moving: np.ndarray  # [F, N] bool
    track_ids: Optional[np.ndarray] = None  # [F, N] int64
    part_name: str = ""
    source: str = ""  # how it was made ("ground truth", "gaussians", ...)

    @property
    def num_frames(self) -> int:
        return int(self.points.shape[0])

    def part_points(self, frame: int) -> np.ndarray:  # [M, 3]
        return self.points[frame][self.moving[frame]]
