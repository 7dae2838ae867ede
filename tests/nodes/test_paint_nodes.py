"""The painting flow in-process: views side by side, Load Image's mask of the painted sheet into Part From
Masks, ComfyUI's own MESH into Load Part Mesh and on to a joint, and the masks checked where they are used."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from tests.nodes.conftest import run_node

RENDER = dict(num_views=4, elevation=15.0, azimuth_start=0.0, fov=40.0, distance=2.0, resolution=64)


@pytest.fixture(scope="module")
def cabinet(lib):
    return importlib.import_module(f"{lib.__name__}.mesh.procedural").make_object("cabinet", 0)


def comfy_mesh(mesh):
    """The object as ComfyUI's MESH: one batch item, Y-up like every 3D node of ComfyUI, float32 / int64."""
    from comfy_api.latest import Types

    y_up = mesh.vertices[:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0])  # (x, y, z) Z-up -> (x, z, -y)
    return Types.MESH(torch.from_numpy(y_up.astype(np.float32))[None], torch.from_numpy(mesh.faces)[None])


def load_image_mask(sheet_alpha: np.ndarray) -> torch.Tensor:
    """What ComfyUI's Load Image outputs as MASK for an RGBA image: 1 - alpha, [1, H, W]."""
    return torch.from_numpy(1.0 - sheet_alpha.astype(np.float32))[None]


def test_views_side_by_side_and_a_painted_sheet_make_the_part(node_classes, cabinet):
    views, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=cabinet, **RENDER).result
    sheet = run_node(node_classes["ViewsSideBySide"], images=views).result[0]
    assert tuple(sheet.shape) == (1, 64, 256, 3)
    torch.testing.assert_close(sheet[0, :, 64:128], views[1])
    masks = run_node(node_classes["PartMaskRender"], mesh=cabinet, cameras=cameras, part_name="door",
                     mode="visible").result[0]
    alpha = 1.0 - torch.cat(list(masks), dim=1).numpy()  # the door erased to transparency, as a user paints it
    mesh, part_masks, preview, info, name = run_node(
        node_classes["PartFromMasks"], mesh=cabinet, cameras=cameras, masks=load_image_mask(alpha),
        part_name="painted door", coverage=0.5, refine_levels=6, hidden="attach").result
    assert name == "painted door" and mesh.part_names == ["body", "painted door"]
    assert mesh.part_face_mask("painted door").sum() == cabinet.part_face_mask("door").sum()
    torch.testing.assert_close(part_masks, masks)  # the new part shows exactly where the door did
    assert tuple(preview.shape) == (4, 64, 64, 3) and "painted on view(s) 0, 1, 3" in info


def test_part_from_masks_errors_name_the_node(node_classes, cabinet):
    _, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=cabinet, **RENDER).result
    kw = dict(mesh=cabinet, cameras=cameras, part_name="lid", coverage=0.5, refine_levels=6, hidden="attach")
    with pytest.raises(ValueError, match=r"^ATOP Part From Masks: the mask is a blank 64x64 image.*Open in MaskEditor"):
        run_node(node_classes["PartFromMasks"], masks=torch.zeros(1, 64, 64), **kw)
    with pytest.raises(ValueError, match=r"^ATOP Part From Masks: the masks have shape \[1, 32, 256\] but the 4 cameras"):
        run_node(node_classes["PartFromMasks"], masks=torch.ones(1, 32, 256), **kw)
    with pytest.raises(ValueError, match=r"^ATOP Part From Masks: part 'door' already exists; parts are: body, door"):
        run_node(node_classes["PartFromMasks"], masks=torch.ones(4, 64, 64), **dict(kw, part_name="door"))


def test_comfy_mesh_goes_through_part_from_masks_to_a_joint(node_classes, cabinet, comfy_dirs):
    """A MESH built here (no weights, no file) is loaded, painted, lifted against the door's true motion and
    its joint found; the same MESH through core's Save GLB file gives the same mesh."""
    from comfy_extras.nodes_hunyuan3d import save_glb

    mesh_in = comfy_mesh(cabinet)
    mesh, parts = run_node(node_classes["LoadPartMesh"], mesh_path="", up_axis="auto", comfy_mesh=mesh_in).result
    assert mesh.part_names == ["mesh"] and parts.startswith("mesh (120 faces)")
    np.testing.assert_allclose(mesh.vertices, cabinet.vertices, atol=1e-6)
    path = comfy_dirs / "input" / "from_save_glb.glb"
    save_glb(mesh_in.vertices[0], mesh_in.faces[0], str(path))
    from_file, _ = run_node(node_classes["LoadPartMesh"], mesh_path=str(path), up_axis="auto").result
    np.testing.assert_allclose(from_file.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(from_file.faces, mesh.faces)

    _, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=mesh, **RENDER).result
    masks = run_node(node_classes["PartMaskRender"], mesh=cabinet, cameras=cameras, part_name="door",
                     mode="visible").result[0]
    front = masks.clone()
    front[1:] = 0  # painted on the front view only
    painted, part_masks = run_node(node_classes["PartFromMasks"], mesh=mesh, cameras=cameras, masks=front,
                                   part_name="door", coverage=0.5, refine_levels=6, hidden="attach").result[:2]
    assert painted.part_names == ["mesh", "door"] and part_masks[1:].any()  # the door shows in the other views
    video = run_node(node_classes["MultiViewVideoFromMesh"], mesh=cabinet, cameras=cameras, part_name="door",
                     num_frames=4, fraction=0.6).result[0]
    points, _, _, info = run_node(
        node_classes["GaussianSDSLift"], mesh=painted, part_name="door", cameras=cameras, guidance="video",
        video=video, iterations=60, learning_rate=0.01, num_gaussians=600, motion="joint", guidance_scale=5.0,
        t_min=0.02, t_max=0.5, seed=0, backend="torch", resolution=32).result
    assert "WARNING" not in info
    joint, _ = run_node(node_classes["OBBAxisSearch"], points=points, mesh=painted, joint_type="auto",
                        refine=True, snap_to_object_axes=True).result
    truth = cabinet.joints[0]
    angle = np.degrees(np.arccos(min(1.0, abs(float(np.dot(joint.axis, truth.axis))))))
    assert joint.type == "revolute" and joint.child == "door" and angle < 5.0


def test_comfy_mesh_batches_and_other_types_are_clear_errors(node_classes, cabinet):
    from comfy_api.latest import Types

    two = comfy_mesh(cabinet)
    two = Types.MESH(two.vertices.repeat(2, 1, 1), two.faces.repeat(2, 1, 1))
    with pytest.raises(ValueError, match=r"^ATOP Load Part Mesh: the MESH holds a batch \(vertices \[2, "):
        run_node(node_classes["LoadPartMesh"], mesh_path="", up_axis="auto", comfy_mesh=two)
    with pytest.raises(ValueError, match=r"^ATOP Load Part Mesh: comfy_mesh is a str, not ComfyUI's MESH"):
        run_node(node_classes["LoadPartMesh"], mesh_path="", up_axis="auto", comfy_mesh="x.glb")
    _, parts = run_node(node_classes["LoadPartMesh"], mesh_path="3d/ignored.glb", up_axis="auto",
                        comfy_mesh=comfy_mesh(cabinet)).result
    assert "the connected MESH was loaded; mesh_path '3d/ignored.glb' was not used" in parts


def test_lift_says_when_the_videos_masks_and_the_part_disagree(node_classes, cabinet):
    _, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=cabinet, **RENDER).result
    video = run_node(node_classes["MultiViewVideoFromMesh"], mesh=cabinet, cameras=cameras, part_name="door",
                     num_frames=3, fraction=0.5).result[0]
    video.part_masks = np.roll(video.part_masks, 20, axis=2)  # masks painted off the part
    info = run_node(node_classes["GaussianSDSLift"], mesh=cabinet, part_name="door", cameras=cameras,
                    guidance="video", video=video, iterations=3, learning_rate=0.01, num_gaussians=200,
                    motion="rigid", guidance_scale=5.0, t_min=0.02, t_max=0.5, seed=0, backend="torch",
                    resolution=32).result[3]
    assert "WARNING: the masks and part 'door' disagree" in info and "view 0" in info


def test_reference_clip_of_a_painted_part_with_a_given_joint(node_classes, cabinet):
    _, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=cabinet, **RENDER).result
    masks = run_node(node_classes["PartMaskRender"], mesh=cabinet, cameras=cameras, part_name="door",
                     mode="visible").result[0]
    painted = run_node(node_classes["PartFromMasks"], mesh=cabinet, cameras=cameras, masks=masks,
                       part_name="front", coverage=0.5, refine_levels=6, hidden="attach").result[0]
    kw = dict(mesh=painted, part_name="front", prompt="", num_frames=3, fraction=0.5, elevation=15.0,
              resolution=64, dataset_name="painted")
    with pytest.raises(ValueError, match="part 'front' has no joint"):
        run_node(node_classes["RenderReferenceMotion"], **kw)
    frames, clip_masks, folder = run_node(node_classes["RenderReferenceMotion"], joint=cabinet.joints[0], **kw).result
    assert tuple(frames.shape) == (12, 64, 64, 3) and clip_masks[0].sum() > 100 and folder.endswith("_front_000")
