"""A small URDF reader (xml.etree): links with visuals, joints, and link poses at q = 0.

Only what loading a segmented, articulated mesh needs: visual origins, mesh file names (``package://``,
``file://`` and relative paths), mesh scale, box/cylinder/sphere primitives, material colours, joint
origins (xyz + rpy), axes and limits.
"""
from __future__ import annotations

import logging
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import InputError
from .assets import asset_root, is_inside, locate

log = logging.getLogger("atop")

PACKAGE_SEARCH_LEVELS = 4  # ancestors of the URDF's folder searched for a package://<name>/ folder


@dataclass
class UrdfVisual:
    origin: np.ndarray  # [4, 4] link_from_visual
    mesh_path: Optional[str] = None  # resolved file path, for <mesh>
    asset_root: str = ""  # the folder the mesh's own references (materials, textures) must stay in
    scale: np.ndarray = field(default_factory=lambda: np.ones(3))  # [3]
    primitive: Optional[tuple[str, tuple[float, ...]]] = None  # ("box", (x, y, z)), ("cylinder", (r, l)), ...
    rgba: Optional[np.ndarray] = None  # [4] material colour, when given
    name: str = ""


@dataclass
class UrdfLink:
    name: str
    visuals: list[UrdfVisual] = field(default_factory=list)


@dataclass
class UrdfJoint:
    name: str
    type: str  # revolute | continuous | prismatic | fixed | floating | planar
    parent: str
    child: str
    origin: np.ndarray  # [4, 4] parent_from_joint at q = 0
    axis: np.ndarray  # [3] unit, joint frame
    limits: Optional[tuple[float, float]] = None


@dataclass
class UrdfModel:
    name: str
    path: str
    links: dict[str, UrdfLink]
    joints: list[UrdfJoint]
    root: str


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:  # [3, 3]
    """URDF's fixed-axis roll/pitch/yaw: R = Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def _floats(text: Optional[str], n: int, default: tuple[float, ...], where: str) -> np.ndarray:
    if text is None or not text.strip():
        return np.array(default, dtype=np.float64)
    try:
        vals = [float(t) for t in text.split()]
    except ValueError:
        vals = []
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise InputError(f"URDF {where} has an invalid value '{text}'; expected {n} numbers; fix the URDF file")
    return np.array(vals, dtype=np.float64)


def _origin(elem: Optional[ET.Element], where: str) -> np.ndarray:  # [4, 4]
    T = np.eye(4)
    if elem is None:
        return T
    xyz = _floats(elem.get("xyz"), 3, (0.0, 0.0, 0.0), f"{where} origin xyz")
    rpy = _floats(elem.get("rpy"), 3, (0.0, 0.0, 0.0), f"{where} origin rpy")
    T[:3, :3] = rpy_matrix(*rpy)
    T[:3, 3] = xyz
    return T


def _package_folders(pkg: str, urdf_dir: str) -> list[str]:
    """Where a ``package://pkg/`` folder may be: the URDF's folder (PartNet-style exports mean "relative to
    the URDF"), ``pkg`` inside it, and among its ancestors up to PACKAGE_SEARCH_LEVELS above, an ancestor
    named ``pkg`` or a ``pkg`` folder inside one (a ROS workspace's sibling packages). Never the file
    system's root, so ``package://etc/`` cannot reach /etc."""
    folders = [urdf_dir, os.path.join(urdf_dir, pkg)]
    d = os.path.abspath(urdf_dir)
    for _ in range(PACKAGE_SEARCH_LEVELS + 1):
        parent = os.path.dirname(d)
        if parent == d:
            break
        if os.path.basename(d) == pkg:
            folders.append(d)
        if d != os.path.abspath(urdf_dir):
            folders.append(os.path.join(d, pkg))
        d = parent
    return folders


def resolve_mesh_path(filename: str, urdf_dir: str, root: str) -> tuple[str, str]:
    """(file path, asset folder of its textures) of a URDF mesh reference. Relative and absolute paths must
    stay inside ``root`` (the URDF's asset folder, assets.py); ``package://pkg/rest`` must stay inside the
    package folder it resolves to. Raises InputError naming what was tried or refused."""
    name = filename.strip()
    if name.startswith("package://"):
        pkg, _, rest = name[len("package://"):].partition("/")
        if not pkg or not rest:
            raise InputError(f"URDF mesh '{filename}' is not a package URI of the form package://<package>/<path>; "
                             "fix the URDF")
        tried = []
        for folder in _package_folders(pkg, urdf_dir):
            if not os.path.isdir(folder):
                continue
            proot = os.path.realpath(folder)
            candidate = os.path.join(folder, rest)
            if not is_inside(proot, candidate):
                raise InputError(f"URDF mesh '{filename}' climbs out of its package folder '{folder}'; "
                                 "refused; keep mesh paths inside their package")
            tried.append(candidate)
            if os.path.isfile(candidate):
                # a package found inside the URDF's asset folder keeps that folder for its textures
                return os.path.normpath(candidate), root if is_inside(root, candidate) else proot
        raise InputError(f"URDF mesh '{filename}': package '{pkg}' does not resolve; looked at: "
                         f"{', '.join(tried[:6]) or 'no folder named ' + repr(pkg) + ' near the URDF'}; put the "
                         f"package folder '{pkg}' beside the URDF's folder or write the mesh path relative to the URDF")
    path, how = locate(name, urdf_dir, root)
    if path is None:
        if how == "outside":
            raise InputError(f"URDF mesh '{filename}' lies outside the asset folder '{root}'; refused; copy the "
                             "mesh into the URDF's folder (or its package) and refer to it by a relative path")
        raise InputError(f"URDF mesh file '{filename}' was not found; looked at: "
                         f"{os.path.join(urdf_dir, name.removeprefix('file://'))}; copy the mesh files next to "
                         "the URDF (keeping its relative paths)")
    if how == "relocated":
        log.warning("URDF mesh '%s' does not exist as written; using '%s' inside the asset folder", filename,
                    os.path.relpath(path, root))
    return path, root


def read_urdf(path: str) -> UrdfModel:
    """Parse a URDF file. Raises InputError for unreadable XML, missing references or missing meshes."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise InputError(f"could not parse URDF '{path}'; the XML is invalid ({exc}); fix or re-export the file") from exc
    robot = tree.getroot()
    if robot.tag != "robot":
        raise InputError(f"'{path}' is not a URDF; its root element is <{robot.tag}>, not <robot>; "
                         "give a URDF file (or a folder with mobility.urdf)")
    urdf_dir = os.path.dirname(os.path.abspath(path))
    root_dir = asset_root(path)
    named_colors: dict[str, np.ndarray] = {}
    for m in robot.findall("material"):
        c = m.find("color")
        if m.get("name") and c is not None:
            named_colors[m.get("name")] = _floats(c.get("rgba"), 4, (0.8, 0.8, 0.8, 1.0), "material color")

    links: dict[str, UrdfLink] = {}
    for le in robot.findall("link"):
        lname = le.get("name")
        if not lname:
            raise InputError(f"URDF '{path}' has a <link> without a name; every link needs one; fix the URDF")
        link = UrdfLink(lname)
        for ve in le.findall("visual"):
            where = f"link '{lname}' visual"
            vis = UrdfVisual(origin=_origin(ve.find("origin"), where), name=ve.get("name", ""))
            geom = ve.find("geometry")
            if geom is None or len(geom) == 0:
                raise InputError(f"URDF {where} has no <geometry>; a visual needs one; fix the URDF")
            g = geom[0]
            if g.tag == "mesh":
                if not g.get("filename"):
                    raise InputError(f"URDF {where} mesh has no filename; fix the URDF")
                vis.mesh_path, vis.asset_root = resolve_mesh_path(g.get("filename"), urdf_dir, root_dir)
                vis.scale = _floats(g.get("scale"), 3, (1.0, 1.0, 1.0), f"{where} mesh scale")
            elif g.tag == "box":
                vis.primitive = ("box", tuple(_floats(g.get("size"), 3, (1, 1, 1), f"{where} box size")))
            elif g.tag == "cylinder":
                vis.primitive = ("cylinder", (float(g.get("radius", 1)), float(g.get("length", 1))))
            elif g.tag == "sphere":
                vis.primitive = ("sphere", (float(g.get("radius", 1)),))
            else:
                raise InputError(f"URDF {where} uses unsupported geometry <{g.tag}>; use mesh, box, cylinder or sphere")
            me = ve.find("material")
            if me is not None:
                c = me.find("color")
                if c is not None:
                    vis.rgba = _floats(c.get("rgba"), 4, (0.8, 0.8, 0.8, 1.0), f"{where} material color")
                elif me.get("name") in named_colors:
                    vis.rgba = named_colors[me.get("name")]
            link.visuals.append(vis)
        links[lname] = link

    joints: list[UrdfJoint] = []
    for je in robot.findall("joint"):
        jname, jtype = je.get("name", ""), je.get("type", "")
        parent, child = je.find("parent"), je.find("child")
        if parent is None or child is None:
            raise InputError(f"URDF joint '{jname}' lacks <parent> or <child>; fix the URDF")
        p, c = parent.get("link"), child.get("link")
        for ln in (p, c):
            if ln not in links:
                raise InputError(f"URDF joint '{jname}' refers to unknown link '{ln}'; links are: "
                                 f"{', '.join(links)}; fix the URDF")
        axis = _floats(je.find("axis").get("xyz") if je.find("axis") is not None else None, 3, (1.0, 0.0, 0.0),
                       f"joint '{jname}' axis")
        n = float(np.linalg.norm(axis))
        if jtype in ("revolute", "continuous", "prismatic") and n < 1e-12:
            raise InputError(f"URDF joint '{jname}' has a zero axis; give a non-zero <axis xyz>; fix the URDF")
        limits = None
        le_ = je.find("limit")
        if le_ is not None and jtype in ("revolute", "prismatic"):
            limits = (float(le_.get("lower", 0.0)), float(le_.get("upper", 0.0)))
        joints.append(UrdfJoint(jname, jtype, p, c, _origin(je.find("origin"), f"joint '{jname}'"),
                                axis / n if n > 0 else axis, limits))

    children = {j.child for j in joints}
    roots = [n for n in links if n not in children]
    if len(roots) != 1:
        raise InputError(f"URDF '{path}' must have exactly one root link, found {len(roots)} "
                         f"({', '.join(roots) or 'none: the joints form a loop'}); fix the joint tree")
    return UrdfModel(robot.get("name", ""), path, links, joints, roots[0])


def link_world_transforms(model: UrdfModel) -> dict[str, np.ndarray]:
    """world_from_link [4, 4] for every link at q = 0 (root link = world)."""
    world = {model.root: np.eye(4)}
    by_parent: dict[str, list[UrdfJoint]] = {}
    for j in model.joints:
        by_parent.setdefault(j.parent, []).append(j)
    frontier = [model.root]
    while frontier:
        p = frontier.pop()
        for j in by_parent.get(p, []):
            if j.child in world:
                raise InputError(f"URDF link '{j.child}' has two parents; fix the joint tree")
            world[j.child] = world[p] @ j.origin
            frontier.append(j.child)
    return world
