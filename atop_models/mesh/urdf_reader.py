"""A small URDF reader (xml.etree): links with visuals, joints, and link poses at q = 0.

Only what loading a segmented, articulated mesh needs: visual origins, mesh file names (``package://``,
``model://``, ``file://`` and relative paths), mesh scale, box/cylinder/sphere/capsule primitives, material
colours, joint origins (xyz + rpy), axes and limits.

Real files deviate from the URDF specification; what this reader reads anyway (and how):
- vectors written with commas and/or any whitespace ("1, 0, 0", "1,0,0"), colours of 3 values (opaque) or
  in 0..255, a single mesh scale number (uniform);
- element names in an XML namespace, tags and joint types in any letter case, backslashes in mesh paths;
- a material colour named before or after the place that defines it, in any link;
- a revolute joint without <limit> (a full turn, with a warning), limits written upper-first (swapped, with
  a warning);
- a file without any <visual>: its <collision> geometry is shown instead (with a warning).
What it refuses, saying why: unexpanded xacro, entity declarations (<!ENTITY>: an expansion bomb or an
external reference), numbers that are not finite, zero or negative sizes, unknown joint types, duplicate
link or joint names, loops and unreachable links, a prismatic joint without <limit>, more than MAX_LINKS
links, and mesh references that leave the asset's folder (assets.py).
"""
from __future__ import annotations

import logging
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import InputError
from .assets import asset_root, is_inside, locate

log = logging.getLogger("atop")

PACKAGE_SEARCH_LEVELS = 4  # ancestors of the URDF's folder searched for a package://<name>/ folder
MAX_URDF_BYTES = 64 << 20  # robot descriptions are text without meshes: kilobytes to a few megabytes
MAX_LINKS = 4096  # articulated objects have tens of links, robots a few hundred
MOVABLE = ("revolute", "continuous", "prismatic")
JOINT_KINDS = MOVABLE + ("fixed", "floating", "planar")
PACKAGE_SCHEMES = ("package://", "model://")  # ROS packages, Gazebo models: a named folder near the file


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
    type: str  # one of JOINT_KINDS
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
    notes: list[str] = field(default_factory=list)  # what was read differently from how it is written


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:  # [3, 3]
    """URDF's fixed-axis roll/pitch/yaw: R = Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def _numbers(text: Optional[str], counts: tuple[int, ...], default: tuple[float, ...], where: str) -> np.ndarray:
    """A vector attribute: numbers separated by whitespace and/or commas, as many as one of ``counts``."""
    if text is None or not text.strip():
        return np.array(default, dtype=np.float64)
    try:
        vals = [float(t) for t in re.split(r"[\s,]+", text.strip())]
    except ValueError:
        vals = []
    if len(vals) not in counts or not all(math.isfinite(v) for v in vals):
        want = " or ".join(str(c) for c in counts)
        raise InputError(f"{where} has an invalid value '{text[:80]}'; expected {want} finite numbers separated by "
                         "spaces or commas; fix the URDF file")
    return np.array(vals, dtype=np.float64)


def _number(elem: ET.Element, attr: str, where: str, default: Optional[float] = None,
            positive: bool = False) -> float:
    """A scalar attribute; ``default`` None makes it required."""
    text = elem.get(attr)
    if text is None or not text.strip():
        if default is None:
            raise InputError(f"{where} has no '{attr}'; add it; fix the URDF file")
        return default
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (positive and value <= 0):
        raise InputError(f"{where} has an invalid {attr} '{text[:80]}'; expected a finite"
                         f"{' positive' if positive else ''} number; fix the URDF file")
    return value


def _rgba(text: Optional[str], where: str) -> np.ndarray:  # [4], 0..1 or 0..255 as written
    c = _numbers(text, (3, 4), (0.8, 0.8, 0.8, 1.0), where)
    return np.append(c, 255.0 if c.max() > 1.0 else 1.0) if len(c) == 3 else c


def _origin(elem: Optional[ET.Element], where: str) -> np.ndarray:  # [4, 4]
    T = np.eye(4)
    if elem is None:
        return T
    xyz = _numbers(elem.get("xyz"), (3,), (0.0, 0.0, 0.0), f"{where} origin xyz")
    rpy = _numbers(elem.get("rpy"), (3,), (0.0, 0.0, 0.0), f"{where} origin rpy")
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


def resolve_mesh_path(filename: str, urdf_dir: str, root: str, where: str = "URDF",
                      notes: Optional[list[str]] = None) -> tuple[str, str]:
    """(file path, asset folder of its textures) of a URDF mesh reference. Relative and absolute paths must
    stay inside ``root`` (the URDF's asset folder, assets.py); ``package://pkg/rest`` must stay inside the
    package folder it resolves to. Raises InputError (prefixed by ``where``) naming what was tried or
    refused; a reference found by its tail inside the folder is added to ``notes``."""
    name = filename.strip()
    if os.sep == "/" and "\\" in name:  # a path written on Windows
        name = name.replace("\\", "/")
    scheme = next((s for s in PACKAGE_SCHEMES if name.startswith(s)), None)
    if scheme is not None:
        pkg, _, rest = name[len(scheme):].partition("/")
        if not pkg or not rest:
            raise InputError(f"{where} mesh '{filename}' is not a URI of the form {scheme}<package>/<path>; "
                             "fix the URDF")
        tried = []
        for folder in _package_folders(pkg, urdf_dir):
            if not os.path.isdir(folder):
                continue
            proot = os.path.realpath(folder)
            candidate = os.path.join(folder, rest)
            if not is_inside(proot, candidate):
                raise InputError(f"{where} mesh '{filename}' climbs out of its package folder '{folder}'; "
                                 "refused; keep mesh paths inside their package")
            tried.append(candidate)
            if os.path.isfile(candidate):
                # a package found inside the URDF's asset folder keeps that folder for its textures
                return os.path.normpath(candidate), root if is_inside(root, candidate) else proot
        raise InputError(f"{where} mesh '{filename}': package '{pkg}' does not resolve; looked at: "
                         f"{', '.join(tried[:6]) or 'no folder named ' + repr(pkg) + ' near the URDF'}; put the "
                         f"package folder '{pkg}' beside the URDF's folder or write the mesh path relative to the URDF")
    path, how = locate(name, urdf_dir, root)
    if path is None:
        if how == "outside":
            raise InputError(f"{where} mesh '{filename}' lies outside the asset folder '{root}'; refused; copy the "
                             "mesh into the URDF's folder (or its package) and refer to it by a relative path")
        raise InputError(f"{where} mesh file '{filename}' was not found; looked at: "
                         f"{os.path.join(urdf_dir, name.removeprefix('file://'))}; copy the mesh files next to "
                         "the URDF (keeping its relative paths)")
    if how == "relocated" and notes is not None:
        notes.append(f"mesh '{filename}' does not exist as written; used '{os.path.relpath(path, root)}' inside "
                     "the asset folder")
    return path, root


def _parse(path: str) -> ET.Element:
    """The file's root element with namespaces stripped; refuses what a robot description never holds."""
    try:
        size = os.path.getsize(path)
        if size > MAX_URDF_BYTES:
            raise InputError(f"URDF '{path}' is {size / 2**20:.0f} MB; robot descriptions are text of at most a few "
                             "MB (meshes live in their own files); check that this is the right file")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read URDF '{path}': {exc.strerror or exc}; check the file") from exc
    if re.search(rb"<!ENTITY", data):
        raise InputError(f"URDF '{path}' declares XML entities (<!ENTITY>), which robot descriptions do not use "
                         "(an entity-expansion bomb or a reference to another file); remove its <!DOCTYPE> block")
    try:
        robot = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(f"could not parse URDF '{path}'; the XML is invalid ({exc}); fix or re-export the "
                         "file") from exc
    xacro = False
    for el in robot.iter():
        if isinstance(el.tag, str):
            xacro |= el.tag.startswith("{http://www.ros.org/wiki/xacro}") or el.tag.startswith("xacro:")
            el.tag = el.tag.rpartition("}")[2].lower()
        xacro |= any("${" in v or "$(" in v for v in el.attrib.values())
    if xacro:
        raise InputError(f"URDF '{path}' is an unexpanded xacro file (xacro elements or ${{...}} expressions); "
                         "expand it first: 'xacro model.urdf.xacro > model.urdf'")
    if robot.tag != "robot":
        raise InputError(f"'{path}' is not a URDF; its root element is <{robot.tag}>, not <robot>; "
                         "give a URDF file (or a folder with mobility.urdf)")
    return robot


def _visual(ve: ET.Element, where: str, urdf_dir: str, root_dir: str, colors: dict[str, np.ndarray],
            notes: list[str]) -> UrdfVisual:
    vis = UrdfVisual(origin=_origin(ve.find("origin"), where), name=ve.get("name", ""))
    geom = ve.find("geometry")
    if geom is None or len(geom) == 0:
        raise InputError(f"{where} has no <geometry>; a visual needs one; fix the URDF")
    g = geom[0]
    if g.tag == "mesh":
        if not (g.get("filename") or "").strip():
            raise InputError(f"{where} mesh has no filename; fix the URDF")
        vis.mesh_path, vis.asset_root = resolve_mesh_path(g.get("filename"), urdf_dir, root_dir, where, notes)
        scale = _numbers(g.get("scale"), (1, 3), (1.0, 1.0, 1.0), f"{where} mesh scale")
        vis.scale = np.repeat(scale, 3) if len(scale) == 1 else scale
        if np.any(vis.scale == 0):
            raise InputError(f"{where} mesh scale '{g.get('scale')}' has a zero factor, which flattens the mesh; "
                             "fix the URDF")
    elif g.tag == "box":
        size = _numbers(g.get("size"), (3,), (1, 1, 1), f"{where} box size")
        if np.any(size <= 0):
            raise InputError(f"{where} box size '{g.get('size')}' must be positive; fix the URDF")
        vis.primitive = ("box", tuple(size))
    elif g.tag in ("cylinder", "capsule"):
        vis.primitive = (g.tag, (_number(g, "radius", f"{where} {g.tag}", positive=True),
                                 _number(g, "length", f"{where} {g.tag}", positive=True)))
    elif g.tag == "sphere":
        vis.primitive = ("sphere", (_number(g, "radius", f"{where} sphere", positive=True),))
    else:
        raise InputError(f"{where} uses unsupported geometry <{g.tag}>; use mesh, box, cylinder, capsule or sphere")
    me = ve.find("material")
    if me is not None:
        c = me.find("color")
        if c is not None:
            vis.rgba = _rgba(c.get("rgba"), f"{where} material color")
        elif me.get("name") in colors:
            vis.rgba = colors[me.get("name")]
    return vis


def _joint(je: ET.Element, path: str, links: dict[str, UrdfLink], notes: list[str]) -> UrdfJoint:
    jname = je.get("name", "")
    where = f"URDF '{path}' joint '{jname}'"
    jtype = (je.get("type") or "").strip().lower()
    if jtype not in JOINT_KINDS:
        raise InputError(f"{where} has type '{je.get('type') or ''}'; URDF joint types are: "
                         f"{', '.join(JOINT_KINDS)}; fix the URDF")
    ends = []
    for tag in ("parent", "child"):
        e = je.find(tag)
        name = e.get("link") if e is not None else None
        if not name:
            raise InputError(f"{where} lacks <{tag} link=...>; fix the URDF")
        if name not in links:
            shown = ", ".join(list(links)[:20]) + (", ..." if len(links) > 20 else "")
            raise InputError(f"{where} refers to unknown link '{name}'; links are: {shown}; fix the URDF")
        ends.append(name)
    ae = je.find("axis")
    axis = _numbers(ae.get("xyz") if ae is not None else None, (3,), (1.0, 0.0, 0.0), f"{where} axis")
    n = float(np.linalg.norm(axis))
    if jtype in MOVABLE and n < 1e-12:
        raise InputError(f"{where} has a zero axis; give a non-zero <axis xyz>; fix the URDF")
    limits = None
    le = je.find("limit")
    if jtype in ("revolute", "prismatic"):
        if le is None and jtype == "prismatic":
            raise InputError(f"{where} (prismatic) has no <limit>; a sliding joint needs its range: add "
                             "<limit lower=... upper=...>")
        if le is None:
            notes.append(f"joint '{jname}' (revolute) has no <limit>; read as a full turn [-pi, pi]")
            limits = (-math.pi, math.pi)
        else:
            limits = (_number(le, "lower", f"{where} limit", 0.0), _number(le, "upper", f"{where} limit", 0.0))
            if limits[0] > limits[1]:
                notes.append(f"joint '{jname}' has its lower limit {limits[0]:g} above the upper {limits[1]:g}; "
                             f"read as [{limits[1]:g}, {limits[0]:g}]")
                limits = (limits[1], limits[0])
    return UrdfJoint(jname, jtype, ends[0], ends[1], _origin(je.find("origin"), where), axis / n if n > 0 else axis,
                     limits)


def read_urdf(path: str) -> UrdfModel:
    """Parse a URDF file. Raises InputError (naming the file) for unreadable or invalid XML, missing
    references or meshes; reads the common deviations listed in the module doc."""
    robot = _parse(path)
    urdf_dir = os.path.dirname(os.path.abspath(path))
    root_dir = asset_root(path)
    link_elems = robot.findall("link")
    if len(link_elems) > MAX_LINKS:
        raise InputError(f"URDF '{path}' has {len(link_elems)} links, more than the {MAX_LINKS} an object may have; "
                         "check that this is the right file")
    notes: list[str] = []
    colors: dict[str, np.ndarray] = {}  # named materials, wherever they are defined
    for m in robot.iter("material"):
        c = m.find("color")
        if m.get("name") and c is not None:
            colors.setdefault(m.get("name"), _rgba(c.get("rgba"), f"URDF '{path}' material '{m.get('name')}' color"))
    use_collision = not any(le.find("visual") is not None for le in link_elems)
    if use_collision and any(le.find("collision") is not None for le in link_elems):
        notes.append("the URDF has no <visual> elements; its <collision> geometry is shown")
    links: dict[str, UrdfLink] = {}
    for le in link_elems:
        lname = le.get("name")
        if not lname:
            raise InputError(f"URDF '{path}' has a <link> without a name; every link needs one; fix the URDF")
        if lname in links:
            raise InputError(f"URDF '{path}' defines link '{lname}' twice; link names must be unique; fix the URDF")
        link = UrdfLink(lname)
        for i, ve in enumerate(le.findall("collision" if use_collision else "visual")):
            where = f"URDF '{path}' link '{lname}' {'collision' if use_collision else 'visual'} {i}"
            link.visuals.append(_visual(ve, where, urdf_dir, root_dir, colors, notes))
        links[lname] = link

    if not links:
        raise InputError(f"URDF '{path}' has no <link> elements (nothing to load); check that this is a robot "
                         "description")
    joints = [_joint(je, path, links, notes) for je in robot.findall("joint")]
    seen: set[str] = set()
    for j in joints:
        if j.name in seen:
            raise InputError(f"URDF '{path}' defines joint '{j.name}' twice; joint names must be unique; fix the URDF")
        seen.add(j.name)
    children = {j.child for j in joints}
    roots = [n for n in links if n not in children]
    if len(roots) != 1:
        raise InputError(f"URDF '{path}' must have exactly one root link, found {len(roots)} "
                         f"({', '.join(roots[:10]) or 'none: the joints form a loop'}); fix the joint tree")
    model = UrdfModel(robot.get("name", ""), path, links, joints, roots[0], notes)
    world = link_world_transforms(model)
    unreachable = [n for n in links if n not in world]
    if unreachable:
        raise InputError(f"URDF '{path}': links {', '.join(unreachable[:10])} are not reachable from the root link "
                         f"'{roots[0]}' (their joints form a loop); fix the joint tree")
    return model


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
                raise InputError(f"URDF '{model.path}' link '{j.child}' has two parents; fix the joint tree")
            world[j.child] = world[p] @ j.origin
            frontier.append(j.child)
    return world
