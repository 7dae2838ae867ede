"""LoadPartMesh, MeshMultiViewRender and PartMaskRender executed in-process, as ComfyUI calls them."""
from __future__ import annotations

import numpy as np
import pytest

from tests.nodes.conftest import run_node


@pytest.fixture(scope="module")
def microwave(node_classes, dev_data):
    out = run_node(node_classes["LoadPartMesh"], mesh_path=str(dev_data / "pm_7236_microwave"), up_axis="auto")
    return out.result


def test_load_lists_parts_and_joints(microwave):
    mesh, parts = microwave
    assert mesh.part_names == ["link_0", "link_1"]
    assert "link_0" in parts and "revolute" in parts


def test_render_masks_and_posed_render(node_classes, microwave):
    mesh, _ = microwave
    images, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=mesh, num_views=4, elevation=15.0,
                               azimuth_start=0.0, fov=40.0, distance=2.0, resolution=64).result
    assert tuple(images.shape) == (4, 64, 64, 3) and images.dtype.is_floating_point
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    assert cameras.c2w.shape == (4, 4, 4)
    visible = run_node(node_classes["PartMaskRender"], mesh=mesh, cameras=cameras, part_name="link_0",
                       mode="visible").result[0]
    silhouette = run_node(node_classes["PartMaskRender"], mesh=mesh, cameras=cameras, part_name="link_0",
                          mode="silhouette").result[0]
    assert tuple(visible.shape) == (4, 64, 64)
    # The door is seen from the front and hidden from the back; its silhouette covers every visible pixel.
    assert visible[0].sum() > 200 and visible[2].sum() < visible[0].sum() * 0.05
    assert bool(((silhouette - visible) >= 0).all()) and silhouette[2].sum() > 200
    opened = run_node(node_classes["MeshMultiViewRender"], mesh=mesh, num_views=4, elevation=15.0,
                      azimuth_start=0.0, fov=40.0, distance=2.0, resolution=64, part_name="link_0",
                      joint_value=1.2).result[0]
    changed = np.abs(opened.numpy() - images.numpy()).max(-1) > 0.05
    assert changed[0].sum() > 100


def test_unknown_part_error_names_node_and_parts(node_classes, microwave):
    mesh, _ = microwave
    _, cameras = run_node(node_classes["MeshMultiViewRender"], mesh=mesh, num_views=4, elevation=15.0,
                          azimuth_start=0.0, fov=40.0, distance=2.0, resolution=32).result
    with pytest.raises(ValueError) as err:
        run_node(node_classes["PartMaskRender"], mesh=mesh, cameras=cameras, part_name="door", mode="visible")
    assert str(err.value) == "ATOP Part Mask Render: part 'door' not found; parts are: link_0, link_1"


def test_missing_file_error(node_classes):
    with pytest.raises(ValueError, match=r"^ATOP Load Part Mesh: .*nothing_here\.glb.*does not exist"):
        run_node(node_classes["LoadPartMesh"], mesh_path="/nonexistent/nothing_here.glb", up_axis="auto")
