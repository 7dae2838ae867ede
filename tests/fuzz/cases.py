"""The fuzz cases: damaged, absurd and hostile files for every file loader, written into a folder.

Each case is a dict: ``id``; ``loader`` (worker.LOADERS); ``path``; ``expect`` "error" (a clear error) or
"loads" (a common layout that must keep working, or a reference the loader drops with a note) or "either"
(a random mutation of a valid file: it may load, or end in a clear error naming the file); ``words``:
text the error (or, for "loads", a loading note) must hold; ``name``: the file or folder the message must
name (default: the path's file name).
"""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np

GLB_MAGIC, CHUNK_JSON, CHUNK_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942


def _glb(doc: dict, blob: bytes) -> bytes:
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    blob += b"\0" * (-len(blob) % 4)
    out = struct.pack("<III", GLB_MAGIC, 2, 12 + 8 + len(js) + 8 + len(blob))
    return out + struct.pack("<II", len(js), CHUNK_JSON) + js + struct.pack("<II", len(blob), CHUNK_BIN) + blob


def triangle_doc(positions: np.ndarray, indices: np.ndarray, *, uri: str | None = None, count: int | None = None):
    """A glTF document with one triangle mesh (float32 positions, uint32 indices) and its buffer bytes."""
    pos = np.asarray(positions, np.float32).tobytes()
    idx = np.asarray(indices, np.uint32).tobytes()
    buffer = {"byteLength": len(pos) + len(idx)} | ({"uri": uri} if uri else {})
    doc = {"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}],
           "nodes": [{"mesh": 0, "name": "part"}],
           "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
           "buffers": [buffer],
           "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(pos)},
                           {"buffer": 0, "byteOffset": len(pos), "byteLength": len(idx)}],
           "accessors": [{"bufferView": 0, "componentType": 5126, "type": "VEC3",
                          "count": len(positions) if count is None else count,
                          "min": [0, 0, 0], "max": [1, 1, 1]},
                         {"bufferView": 1, "componentType": 5125, "type": "SCALAR", "count": len(indices)}]}
    return doc, pos + idx


def textured_doc(image: bytes):
    """``triangle_doc``'s tetrahedron with UVs and a base-colour texture of these image bytes, embedded."""
    doc, blob = triangle_doc(TETRA, TETRA_FACES)
    uv = np.zeros((4, 2), np.float32).tobytes()
    doc["bufferViews"] += [{"buffer": 0, "byteOffset": len(blob), "byteLength": len(uv)},
                           {"buffer": 0, "byteOffset": len(blob) + len(uv), "byteLength": len(image)}]
    blob += uv + image
    doc["buffers"][0]["byteLength"] = len(blob)
    doc["accessors"].append({"bufferView": 2, "componentType": 5126, "type": "VEC2", "count": 4})
    doc["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_0"] = 2
    doc["meshes"][0]["primitives"][0]["material"] = 0
    doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}]
    doc["textures"] = [{"source": 0}]
    doc["images"] = [{"bufferView": 3, "mimeType": "image/png"}]
    return doc, blob


TETRA = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
TETRA_FACES = np.array([0, 1, 2, 0, 1, 3, 0, 2, 3, 1, 2, 3], np.uint32)
TETRA_OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (its pixel data is absent): a decompression bomb."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def small_png(noise: bool = False) -> bytes:
    """An 8 x 8 grey PNG, or a 64 x 64 one of noise (whose pixel data does not compress away)."""
    import io

    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8) if noise else \
        np.full((8, 8, 3), 120, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def safetensors_bytes(header: dict, data: bytes = b"") -> bytes:
    js = json.dumps(header).encode()
    return struct.pack("<Q", len(js)) + js + data


class Cases:
    def __init__(self, root: Path):
        self.root = root
        self.items: list[dict] = []
        self.outside = root / "outside"  # files beside the assets, that references must not reach
        self.outside.mkdir(parents=True)
        (self.outside / "secret.obj").write_text(TETRA_OBJ)
        (self.outside / "secret.mtl").write_text("newmtl m\nKd 1 0 0\n")
        (self.outside / "secret.png").write_bytes(small_png())
        (self.outside / "secret.bin").write_bytes(_triangle_bytes())

    def add(self, cid: str, loader: str, path: Path, expect: str = "error", words=(), name: str | None = None):
        self.items.append(dict(id=cid, loader=loader, path=str(path), expect=expect, words=list(words),
                               name=name if name is not None else os.path.basename(str(path).rstrip("/"))))

    def file(self, rel: str, data: bytes | str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        (p.write_text if isinstance(data, str) else p.write_bytes)(data)
        return p


def _triangle_bytes() -> bytes:
    return triangle_doc(TETRA, TETRA_FACES)[1]


RANDOM = np.random.default_rng(19).bytes(4096)


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One seeded random damage: flipped bytes, a cut, random bytes inserted, or a slice repeated."""
    data = bytearray(data)
    kind = rng.integers(4)
    at = int(rng.integers(len(data)))
    if kind == 0:
        for i in rng.integers(len(data), size=max(1, len(data) // 50)):
            data[i] ^= int(rng.integers(1, 256))
    elif kind == 1:
        del data[at:]
    elif kind == 2:
        data[at:at] = rng.bytes(int(rng.integers(1, 64)))
    else:
        data[at:at] = data[at:at + int(rng.integers(1, 256))] * int(rng.integers(2, 50))
    return bytes(data)


MUTANTS_PER_FILE = 8


def mesh_cases(c: Cases) -> None:
    doc, blob = triangle_doc(TETRA, TETRA_FACES)
    good_glb = _glb(doc, blob)
    c.add("glb/random-bytes", "mesh", c.file("glb/random.glb", RANDOM), words=["not a valid GLB"])
    c.add("glb/truncated", "mesh", c.file("glb/truncated.glb", good_glb[: len(good_glb) * 2 // 3]),
          words=["is truncated"])
    c.add("glb/empty", "mesh", c.file("glb/empty.glb", b""), words=["empty (0 bytes)"])
    zero = dict(doc, meshes=[{"primitives": [{"attributes": {"POSITION": 0}, "mode": 0}]}])  # points only
    c.add("glb/zero-faces", "mesh", c.file("glb/points.glb", _glb(zero, blob)), words=["no mesh faces"])
    for kind, value in (("nan", math.nan), ("inf", math.inf)):
        bad = TETRA.copy()
        bad[2, 1] = value
        c.add(f"glb/{kind}-vertices", "mesh", c.file(f"glb/{kind}.glb", _glb(*triangle_doc(bad, TETRA_FACES))),
              words=["NaN/inf"])
    c.add("glb/accessor-1e9-vertices", "mesh",
          c.file("glb/huge_count.glb", _glb(*triangle_doc(TETRA, TETRA_FACES, count=10 ** 9))),
          words=["not a valid GLB"])
    c.add("glb/index-1e9", "mesh",
          c.file("glb/huge_index.glb", _glb(*triangle_doc(TETRA, np.array([0, 1, 10 ** 9], np.uint32)))),
          words=["index missing vertices"])
    header = bytearray(good_glb)
    header[8:12] = struct.pack("<I", 0xFFFFFFF0)  # total length 4 GB
    c.add("glb/length-4GB", "mesh", c.file("glb/length.glb", bytes(header)), words=["is truncated"])
    ext, _ = triangle_doc(TETRA, TETRA_FACES, uri="../outside/secret.bin")
    c.add("glb/buffer-outside", "mesh", c.file("glb/outside_buffer.glb", _glb(ext, b"")),
          words=["secret.bin", "outside the asset folder"])

    for key, image, why in (("bomb", png_header(100000, 100000), "decompression bomb"),
                            ("truncated", small_png(noise=True)[:4000], "could not be decoded"),
                            ("random", RANDOM[:300], "not a readable image")):
        c.add(f"glb/embedded-texture-{key}", "mesh", c.file(f"glb/texture_{key}.glb", _glb(*textured_doc(image))),
              expect="loads", words=[f"texture_{key}.glb" if key != "truncated" else "(embedded)", why])
    import base64

    doc_uri, blob_uri = textured_doc(png_header(100000, 100000))
    doc_uri["images"] = [{"uri": "data:image/png;base64," + base64.b64encode(png_header(100000, 100000)).decode()}]
    doc_uri["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(blob_uri).decode()
    c.add("gltf/data-uri-texture-bomb", "mesh", c.file("gltf/bomb_uri.gltf", json.dumps(doc_uri)), expect="loads",
          words=["bomb_uri.gltf", "decompression bomb"])

    # glTF (JSON + referenced files)
    c.add("gltf/random-bytes", "mesh", c.file("gltf/random.gltf", RANDOM), words=["not valid glTF JSON"])
    c.add("gltf/truncated-json", "mesh", c.file("gltf/cut.gltf", json.dumps(doc)[:200]), words=["not valid glTF JSON"])
    c.add("gltf/deep-json", "mesh", c.file("gltf/deep.gltf", "[" * 100000 + "]" * 100000),
          words=["not valid glTF JSON"])
    c.add("gltf/not-an-object", "mesh", c.file("gltf/list.gltf", "[1, 2]"), words=["not a glTF document"])
    for cid, uri in (("gltf/buffer-absolute", str(c.outside / "secret.bin")),
                     ("gltf/buffer-dotdot", "../../outside/secret.bin"),
                     ("gltf/buffer-etc-passwd", "/etc/passwd")):
        d, _ = triangle_doc(TETRA, TETRA_FACES, uri=uri)
        c.add(cid, "mesh", c.file(f"gltf/{cid.split('/')[1]}/model.gltf", json.dumps(d)),
              words=[os.path.basename(uri), "outside the asset folder"])
    d, data = triangle_doc(TETRA, TETRA_FACES, uri="missing.bin")
    c.add("gltf/buffer-missing", "mesh", c.file("gltf/missing/model.gltf", json.dumps(d)), words=["missing.bin"])
    d, data = triangle_doc(TETRA, TETRA_FACES, uri="data:application/octet-stream;base64,@@@not-base64@@@")
    c.add("gltf/bad-data-uri", "mesh", c.file("gltf/data_uri.gltf", json.dumps(d)), words=["not a valid GLTF"])
    d, data = triangle_doc(TETRA, TETRA_FACES, uri="model.bin")
    c.file("gltf/layout/model.bin", data)
    c.add("gltf/beside-buffer-loads", "mesh", c.file("gltf/layout/model.gltf", json.dumps(d)), expect="loads")

    # OBJ + MTL
    # trimesh 5 reads no faces in it; trimesh 4.4 fails to guess its text encoding: either is a clear refusal
    c.add("obj/random-bytes", "mesh", c.file("obj/random.obj", RANDOM))
    c.add("obj/binary-zeros", "mesh", c.file("obj/zeros.obj", b"\0" * 4096), words=["no mesh faces"])
    # OBJ has no length or end marker: a file cut after a complete face line is a smaller valid OBJ; this one
    # is cut before its faces.
    c.add("obj/truncated", "mesh", c.file("obj/cut.obj", TETRA_OBJ[:30]), words=["no mesh faces"])
    c.add("obj/empty", "mesh", c.file("obj/empty.obj", b""), words=["empty (0 bytes)"])
    c.add("obj/zero-faces", "mesh", c.file("obj/points.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"), words=["no mesh faces"])
    for kind, text in (("nan", "nan"), ("inf", "inf"), ("overflow", "1e400")):
        c.add(f"obj/{kind}-vertices", "mesh", c.file(f"obj/{kind}.obj", TETRA_OBJ.replace("v 1 0 0", f"v {text} 0 0")),
              words=["NaN/inf"])
    c.add("obj/index-1e9", "mesh", c.file("obj/huge_index.obj", TETRA_OBJ + "f 1 2 1000000000\n"),
          words=["out of bounds"])
    c.add("obj/negative-index", "mesh", c.file("obj/neg_index.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf -5 -6 -7\n"),
          words=["out of bounds"])
    for cid, ref in (("obj/mtllib-dotdot", "../../outside/secret.mtl"), ("obj/mtllib-absolute", "/etc/passwd")):
        c.add(cid, "mesh", c.file(f"obj/{cid.split('/')[1]}/m.obj", f"mtllib {ref}\nusemtl m\n{TETRA_OBJ}"),
              expect="loads", words=[ref, "outside the asset folder"])
    textures = {"map-dotdot": "../../outside/secret.png", "map-absolute": str(c.outside / "secret.png"),
                "map-bomb": "bomb.png", "map-truncated": "cut.png", "map-random": "random.png"}
    for key, ref in textures.items():
        folder = f"obj/{key}"
        c.file(f"{folder}/bomb.png", png_header(100000, 100000))
        c.file(f"{folder}/cut.png", small_png(noise=True)[:4000])
        c.file(f"{folder}/random.png", RANDOM[:500])
        c.file(f"{folder}/m.mtl", f"newmtl m\nKd 1 1 1\nmap_Kd {ref}\n")
        why = {"map-bomb": "more than the", "map-truncated": "", "map-random": "not a readable image"}.get(
            key, "outside the asset folder")
        c.add(f"obj/{key}", "mesh", c.file(f"{folder}/m.obj", "mtllib m.mtl\nusemtl m\nvt 0 0\n" + TETRA_OBJ),
              expect="loads", words=[os.path.basename(ref)] + ([why] if why else []))


def urdf_cases(c: Cases) -> None:
    c.file("urdf_cases/meshes/part.obj", TETRA_OBJ)
    one = ('<robot name="r"><link name="a"><visual><origin xyz="0 0 0"/><geometry><mesh filename="{}"/></geometry>'
           '</visual></link></robot>')
    good = one.format("meshes/part.obj")
    c.add("urdf/random-bytes", "mesh", c.file("urdf_cases/random.urdf", RANDOM), words=["XML is invalid"])
    c.add("urdf/truncated", "mesh", c.file("urdf_cases/cut.urdf", good[:70]), words=["XML is invalid"])
    c.add("urdf/empty", "mesh", c.file("urdf_cases/empty.urdf", b""), words=["empty (0 bytes)"])
    c.add("urdf/zero-faces", "mesh", c.file("urdf_cases/nofaces.urdf", '<robot name="r"><link name="a"/></robot>'),
          words=["no mesh faces"])
    c.add("urdf/nan-origin", "mesh", c.file("urdf_cases/nan.urdf", good.replace('xyz="0 0 0"', 'xyz="0 nan 0"')),
          words=["invalid value '0 nan 0'"])
    c.file("urdf_cases/meshes/nan.obj", TETRA_OBJ.replace("v 1 0 0", "v nan 0 0"))
    c.add("urdf/mesh-nan-vertices", "mesh", c.file("urdf_cases/nan_mesh.urdf", one.format("meshes/nan.obj")),
          words=["NaN/inf"], name="nan.obj")
    bomb = ('<?xml version="1.0"?><!DOCTYPE robot [<!ENTITY a "' + "a" * 100 + '">'
            + "".join(f'<!ENTITY {c2} "{("&" + p + ";") * 10}">' for p, c2 in zip("abcdefgh", "bcdefghi"))
            + ']><robot name="&i;"><link name="l"/></robot>')
    c.add("urdf/entity-bomb", "mesh", c.file("urdf_cases/bomb.urdf", bomb), words=["declares XML entities"])
    xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><robot name="&x;"/>'
    c.add("urdf/external-entity", "mesh", c.file("urdf_cases/xxe.urdf", xxe), words=["declares XML entities"])
    c.add("urdf/deep-xml", "mesh", c.file("urdf_cases/deep_xml.urdf", "<robot>" + "<a>" * 200000 + "</a>" * 200000
                                          + "</robot>"), words=["no <link> elements"])

    def chain(n: int, edges=None) -> str:
        links = "".join(f'<link name="l{i}"><visual><geometry><box size="1 1 1"/></geometry></visual></link>'
                        for i in range(n))
        edges = [(i, i + 1) for i in range(n - 1)] if edges is None else edges
        return ('<robot name="c">' + links + "".join(
            f'<joint name="j{k}" type="revolute"><parent link="l{a}"/><child link="l{b}"/><origin xyz="0 0 1"/>'
            f'<axis xyz="0 0 1"/><limit lower="0" upper="1"/></joint>' for k, (a, b) in enumerate(edges)) + "</robot>")

    c.add("urdf/deep-tree-3000-loads", "mesh", c.file("urdf_cases/deep.urdf", chain(3000)), expect="loads")
    c.add("urdf/tree-5000-links", "mesh", c.file("urdf_cases/many.urdf", chain(5000)), words=["more than the 4096"])
    c.add("urdf/cyclic", "mesh", c.file("urdf_cases/cycle.urdf", chain(3, [(0, 1), (1, 2), (2, 0)])), words=["loop"])
    c.add("urdf/cycle-off-the-root", "mesh", c.file("urdf_cases/side_cycle.urdf", chain(3, [(1, 2), (2, 1)])),
          words=["not reachable from the root"])
    c.add("urdf/two-parents", "mesh", c.file("urdf_cases/two_parents.urdf", chain(3, [(0, 1), (0, 2), (1, 2)])),
          words=["two parents"])
    for cid, ref, why in (("mesh-absolute", "/etc/passwd", "outside the asset folder"),
                          ("mesh-absolute-outside", str(c.outside / "secret.obj"), "outside the asset folder"),
                          ("mesh-dotdot", "../outside/secret.obj", "outside the asset folder"),
                          ("mesh-deep-dotdot", "../" * 30 + "etc/passwd", "outside the asset folder"),
                          ("package-unresolved", "package://no_such_pkg/meshes/gone.obj", "does not resolve"),
                          ("package-climbs", "package://urdf_cases/../outside/secret.obj", "climbs out of its package"),
                          ("package-etc", "package://etc/passwd", "does not resolve")):
        c.add(f"urdf/{cid}", "mesh", c.file(f"urdf_cases/{cid}.urdf", one.format(ref)), words=[why])
    # common layouts keep working: ../meshes/ beside urdf/, package://, model://
    c.file("ros/robot_description/meshes/part.obj", TETRA_OBJ)
    for cid, ref in (("dotdot-meshes", "../meshes/part.obj"),
                     ("package", "package://robot_description/meshes/part.obj"),
                     ("model", "model://robot_description/meshes/part.obj")):
        c.add(f"urdf/{cid}-loads", "mesh", c.file(f"ros/robot_description/urdf/{cid}.urdf", one.format(ref)),
              expect="loads")


def partnet_cases(c: Cases) -> None:
    def obj_folder(name: str, urdf: str | bytes | None, mtl: str | None = None) -> Path:
        folder = c.root / "partnet" / name
        (folder / "textured_objs").mkdir(parents=True)
        (folder / "images").mkdir()
        (folder / "images" / "texture_0.png").write_bytes(small_png())
        (folder / "textured_objs" / "original-1.obj").write_text(
            ("mtllib original-1.mtl\nusemtl m\nvt 0 0\n" if mtl else "") + TETRA_OBJ)
        if mtl:
            (folder / "textured_objs" / "original-1.mtl").write_text(mtl)
        if urdf is not None:
            (folder / "mobility.urdf").write_bytes(urdf if isinstance(urdf, bytes) else urdf.encode())
        return folder

    urdf = ('<robot name="p"><link name="base"/><link name="link_0"><visual><origin xyz="0 0 0"/><geometry>'
            '<mesh filename="textured_objs/original-1.obj"/></geometry></visual></link><joint name="joint_0" '
            'type="revolute"><parent link="base"/><child link="link_0"/><axis xyz="0 0 1"/>'
            '<limit lower="0" upper="1"/></joint></robot>')
    c.add("partnet/no-urdf", "mesh", obj_folder("no_urdf", None), words=["no mobility.urdf"])
    c.add("partnet/random-urdf", "mesh", obj_folder("random_urdf", RANDOM), words=["XML is invalid"],
          name="mobility.urdf")
    c.add("partnet/empty-urdf", "mesh", obj_folder("empty_urdf", b""), words=["empty (0 bytes)"], name="mobility.urdf")
    c.add("partnet/missing-obj", "mesh", obj_folder("missing_obj", urdf.replace("original-1", "original-9")),
          words=["original-9.obj", "not found"])
    c.add("partnet/texture-loads", "mesh", obj_folder("texture", urdf, "newmtl m\nmap_Kd ../images/texture_0.png\n"),
          expect="loads")
    c.add("partnet/texture-outside", "mesh",
          obj_folder("texture_outside", urdf, "newmtl m\nmap_Kd ../../../outside/secret.png\n"),
          expect="loads", words=["secret.png", "outside the asset folder"])
    folder = obj_folder("two_urdfs", None)
    (folder / "a.urdf").write_text(urdf)
    (folder / "b.urdf").write_text(urdf)
    c.add("partnet/two-urdfs", "mesh", folder, words=["several URDF files"])


def weights_cases(c: Cases) -> None:
    import torch

    good = c.file("weights/good.safetensors", b"")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(64, 64)}, str(good))
    data = good.read_bytes()
    pt = c.root / "weights" / "good.pt"
    torch.save({"w": torch.zeros(64, 64)}, pt)
    for ext in (".pt", ".ckpt", ".safetensors"):
        c.add(f"weights/random{ext}", "weights", c.file(f"weights/random{ext}", RANDOM), words=["random" + ext])
        c.add(f"weights/empty{ext}", "weights", c.file(f"weights/empty{ext}", b""), words=["empty" + ext])
    c.add("weights/truncated.safetensors", "weights", c.file("weights/cut.safetensors", data[: len(data) // 2]),
          words=["not a valid safetensors"])
    c.add("weights/truncated.pt", "weights", c.file("weights/cut.pt", pt.read_bytes()[:300]), words=["corrupt"])
    huge = safetensors_bytes({"w": {"dtype": "F32", "shape": [25_000_000_000], "data_offsets": [0, 100_000_000_000]}},
                             b"\0" * 16)
    c.add("weights/safetensors-100GB-tensor", "weights", c.file("weights/huge.safetensors", huge),
          words=["not a valid safetensors"])
    c.add("weights/safetensors-header-length-2^60", "weights",
          c.file("weights/header.safetensors", struct.pack("<Q", 1 << 60) + b"{}"), words=["not a valid safetensors"])
    c.add("weights/safetensors-deep-header", "weights",
          c.file("weights/deep.safetensors", struct.pack("<Q", 200000) + b"[" * 100000 + b"]" * 100000),
          words=["not a valid safetensors"])
    c.add("weights/pickle-code", "weights", c.file("weights/evil.ckpt", _evil_pickle()), words=["weights-only"])
    c.add("weights/not-a-model", "weights", good, words=["no UNet weights"])
    import shutil

    from atop_models.diffusion.tiny import make_tiny

    tiny = make_tiny(c.root / "weights" / "tiny", "diffusers")["model"]
    unet_weights = tiny / "unet" / "diffusion_pytorch_model.safetensors"

    def diffusers(name: str, rel: str, data, words):
        folder = c.root / "weights" / name
        shutil.copytree(tiny, folder)
        (folder / rel).write_bytes(data if isinstance(data, bytes) else data.encode())
        c.add(f"weights/diffusers-{name}", "weights", folder, words=words, name=rel.split("/")[-1])

    unet_config = json.loads((tiny / "unet" / "config.json").read_text())
    diffusers("index-not-json", "model_index.json", "{not json", ["cannot parse"])
    diffusers("index-a-list", "model_index.json", "[]", ["not an object"])
    diffusers("unet-config-types", "unet/config.json", json.dumps(dict(unet_config, model_channels="many")),
              ["UNet configuration (config.json) is invalid"])
    diffusers("unet-config-absurd", "unet/config.json",
              json.dumps(dict(unet_config, model_channels=10 ** 9, channel_mult=[10 ** 6] * 4)), ["UNet configuration"])
    diffusers("unet-weights-truncated", "unet/diffusion_pytorch_model.safetensors",
              unet_weights.read_bytes()[:5000], ["not a valid safetensors"])
    diffusers("vae-config-deep", "vae/config.json", "[" * 100000 + "]" * 100000, ["cannot parse"])
    folder = c.root / "weights" / "unet_only"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_channels": 10 ** 9, "channel_mult": [10 ** 6] * 4}))
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(data)
    c.add("weights/unet-config-absurd-sizes", "weights", folder, words=["not a complete ImageDream model"])


def _evil_pickle() -> bytes:
    """A legacy torch file whose pickle would run a shell command when unpickled without weights_only."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/atop-fuzz-pwned",))

    return pickle.dumps({"w": Evil()}, protocol=2)


def motion_cases(c: Cases) -> None:
    import torch
    from safetensors.torch import save_file

    from atop_models.diffusion.checkpoints import MOTION_FORMAT, save_motion_module
    from atop_models.diffusion.tiny import tiny_unet

    path = c.root / "motion" / "good.safetensors"
    save_motion_module(tiny_unet(motion=True), path)
    data = path.read_bytes()
    c.add("motion/random", "motion", c.file("motion/random.safetensors", RANDOM), words=["not a valid safetensors"])
    c.add("motion/empty", "motion", c.file("motion/empty.safetensors", b""), words=["not a valid safetensors"])
    c.add("motion/truncated", "motion", c.file("motion/cut.safetensors", data[: len(data) // 2]),
          words=["not a valid safetensors"])
    c.add("motion/wrong-extension", "motion", c.file("motion/module.pt", data), words=[".safetensors files"])
    plain = c.root / "motion" / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    c.add("motion/no-metadata", "motion", plain, words=["not a motion-module file"])
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta, state = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}

    def variant(name: str, **changes):
        p = c.root / "motion" / f"{name}.safetensors"
        new_state = changes.pop("state", state)
        save_file(new_state, str(p), metadata=dict(meta, **changes))
        return p

    c.add("motion/config-not-json", "motion", variant("bad_json", motion_config="{oops"),
          words=["unreadable motion settings"])
    c.add("motion/config-deep-json", "motion", variant("deep_json", motion_config="[" * 100000 + "]" * 100000),
          words=["unreadable motion settings"])
    c.add("motion/config-absurd-width", "motion",
          variant("wide", motion_config=json.dumps({"film_hidden": 10 ** 9, "version": 1})),
          words=["film_hidden"])
    nan_state = {k: (torch.full_like(v, math.nan) if i == 0 else v) for i, (k, v) in enumerate(state.items())}
    c.add("motion/nan-weights", "motion", variant("nan", state=nan_state), words=["not finite"])
    c.add("motion/format-only", "motion", c.file("motion/format_only.safetensors", safetensors_bytes(
        {"__metadata__": {"format": MOTION_FORMAT}})), words=["unreadable motion settings"])
    rng = np.random.default_rng(1920)
    for k in range(MUTANTS_PER_FILE):
        c.add(f"mutant-motion/{k}", "motion", c.file(f"motion/mutant_{k}.safetensors", mutate(data, rng)),
              expect="either")


def clip_cases(c: Cases) -> None:
    from atop_models.mesh.procedural import make_object
    from atop_models.training.clips import clip_json, render_reference_clip, write_clip

    mesh = make_object("cabinet", 0)
    clip = render_reference_clip(mesh, mesh.joints[0].child, num_frames=2, resolution=16)
    good = write_clip(clip, c.root / "clips" / "template" / "clip_0")
    meta = clip_json(clip)

    def dataset(name: str, edit) -> Path:
        import shutil

        folder = c.root / "clips" / name
        shutil.copytree(good.parent, folder)
        edit(folder / "clip_0")
        return folder

    def write(rel: str, data):
        return lambda f: ((f / rel).write_text if isinstance(data, str) else (f / rel).write_bytes)(data)

    c.add("clips/json-random", "clips", dataset("random", write("clip.json", RANDOM)),
          words=["clip.json is not valid JSON"])
    c.add("clips/json-empty", "clips", dataset("empty", write("clip.json", "")), words=["clip.json is not valid JSON"])
    c.add("clips/json-truncated", "clips", dataset("cut", write("clip.json", json.dumps(meta)[:100])),
          words=["clip.json is not valid JSON"])
    c.add("clips/json-deep", "clips", dataset("deep", write("clip.json", "[" * 100000 + "]" * 100000)),
          words=["clip.json is not valid JSON"])
    c.add("clips/json-non-utf8", "clips", dataset("latin", write("clip.json", b'{"prompt": "\xff\xfe"}')),
          words=["clip.json is not valid JSON"])
    for cid, key, value in (("absurd-views", "num_views", 10 ** 6), ("absurd-frames", "num_frames", 10 ** 9),
                            ("absurd-resolution", "resolution", 10 ** 6)):
        c.add(f"clips/{cid}", "clips", dataset(cid, write("clip.json", json.dumps(dict(meta, **{key: value})))),
              words=[key])
    c.add("clips/nan-joint-values", "clips", dataset("nan_values", write("clip.json", json.dumps(
        dict(meta, joint_values=[0.0, math.nan])))), words=["joint_values"])
    nan_cams = json.loads(json.dumps(meta))
    nan_cams["cameras"]["c2w"][0][0][0] = math.inf
    c.add("clips/inf-camera", "clips", dataset("inf_camera", write("clip.json", json.dumps(nan_cams))),
          words=["cameras"])
    c.add("clips/frame-bomb", "clips", dataset("bomb", write("view_0/frame_00.png", png_header(100000, 100000))),
          words=["frame_00.png"])
    c.add("clips/frame-truncated", "clips", dataset("cut_png", lambda f: (f / "view_0" / "frame_01.png").write_bytes(
        (f / "view_0" / "frame_01.png").read_bytes()[:80])), words=["frame_01.png"])
    c.add("clips/frame-random", "clips", dataset("random_png", write("view_0/mask.png", RANDOM)), words=["mask.png"])
    (c.root / "clips" / "none").mkdir()
    c.add("clips/empty-dataset", "clips", c.root / "clips" / "none", words=["no clip"])
    rng = np.random.default_rng(1921)
    for k in range(MUTANTS_PER_FILE):
        c.add(f"mutant-clip-json/{k}", "clips",
              dataset(f"mutant_{k}", write("clip.json", mutate(json.dumps(meta).encode(), rng))), expect="either")


def workflow_cases(c: Cases) -> None:
    api = {"1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 0}}}
    text = json.dumps(api)
    c.add("workflow/random-bytes", "workflow", c.file("workflow/random.json", RANDOM), words=["not valid JSON"])
    c.add("workflow/empty", "workflow", c.file("workflow/empty.json", b""), words=["not valid JSON"])
    c.add("workflow/truncated", "workflow", c.file("workflow/cut.json", text[:30]), words=["not valid JSON"])
    c.add("workflow/deep-json", "workflow", c.file("workflow/deep.json", "[" * 100000 + "]" * 100000),
          words=["not valid JSON"])
    c.add("workflow/huge-number", "workflow", c.file("workflow/number.json", text.replace("0}", "1e999999}")),
          words=["not finite"])
    c.add("workflow/not-a-workflow", "workflow", c.file("workflow/list.json", "[1, 2, 3]"),
          words=["neither an API-format nor a UI-format"])
    c.add("workflow/is-a-folder", "workflow", c.root / "workflow", words=["is a folder"])
    c.add("workflow/missing", "workflow", c.root / "workflow" / "gone.json", words=["not found"])
    ui = {"nodes": [{"id": 1, "type": "ProceduralObject", "inputs": [{"name": "x", "link": 99}],
                     "widgets_values": []}], "links": [[99, 7, 0, 1, 0, "ATOP_PART_MESH"]]}
    c.add("workflow/ui-unknown-node", "workflow", c.file("workflow/unknown.json", json.dumps(ui)),
          words=["not known to this ComfyUI"])
    c.add("workflow/ui-garbage-nodes", "workflow", c.file("workflow/garbage_ui.json",
                                                          json.dumps({"nodes": [1, "a", None], "links": "x"})),
          words=["UI-format"])
    c.add("workflow/api-loads", "workflow", c.file("workflow/api.json", text), expect="loads")


def mutant_cases(c: Cases) -> None:
    """Seeded random mutations of valid files of every format, beyond the hand-made cases above."""
    import torch
    from safetensors.torch import save_file

    rng = np.random.default_rng(1919)
    c.file("mutants/meshes/part.obj", TETRA_OBJ)
    weights = c.root / "mutants" / "valid.safetensors"
    save_file({"w": torch.zeros(8, 8)}, str(weights))
    api = {"1": {"class_type": "ProceduralObject", "inputs": {"category": "cabinet", "seed": 0}}}
    valid = {("glb", "mesh"): _glb(*triangle_doc(TETRA, TETRA_FACES)),
             ("obj", "mesh"): TETRA_OBJ.encode(),
             ("urdf", "mesh"): ('<robot name="r"><link name="a"><visual><origin xyz="0 0 0" rpy="0 0 0"/><geometry>'
                                '<mesh filename="meshes/part.obj" scale="1 1 1"/></geometry></visual></link>'
                                '<link name="b"/><joint name="j" type="revolute"><parent link="a"/>'
                                '<child link="b"/><axis xyz="0 0 1"/><limit lower="0" upper="1"/></joint>'
                                '</robot>').encode(),
             ("safetensors", "weights"): weights.read_bytes(),
             ("json", "workflow"): json.dumps(api).encode()}
    for (ext, loader), data in valid.items():
        for k in range(MUTANTS_PER_FILE):
            path = c.file(f"mutants/{ext}_{k}.{ext}", mutate(data, rng))
            c.add(f"mutant-{ext}/{k}", loader, path, expect="either")


def write_cases(root: Path) -> list[dict]:
    c = Cases(root)
    for make in (mesh_cases, urdf_cases, partnet_cases, weights_cases, motion_cases, clip_cases, workflow_cases,
                 mutant_cases):
        make(c)
    return c.items
