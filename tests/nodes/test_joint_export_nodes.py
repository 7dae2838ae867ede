"""GroundTruthPointSequence -> OBBAxisSearch -> EvaluateJoint -> ExportURDF, executed in-process."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tests.nodes.conftest import run_node


@pytest.fixture(scope="module")
def cabinet(lib):
    import importlib

    procedural = importlib.import_module(f"{lib.__name__}.mesh.procedural")
    return procedural.make_object("cabinet", 0)


def test_search_evaluate_export(node_classes, cabinet, comfy_dirs):
    seq = run_node(node_classes["GroundTruthPointSequence"], mesh=cabinet, part_name="door", num_frames=6,
                   num_points=600, noise=0.0, outliers=0.0, subsample=1, drop_correspondence=1.0, seed=0).result[0]
    assert seq.points.shape[0] == 6 and seq.track_ids is None
    joint, overlay = run_node(node_classes["OBBAxisSearch"], points=seq, mesh=cabinet, joint_type="auto",
                              refine=True).result
    assert joint.type == "revolute" and joint.child == "door"
    assert tuple(overlay.shape) == (4, 256, 256, 3)
    report, axis_err, pos_err, ok = run_node(node_classes["EvaluateJoint"], joint=joint, mesh=cabinet).result
    assert ok and axis_err < 0.1 and 0 <= pos_err < 0.005 and "axis error" in report
    out = run_node(node_classes["ExportURDF"], mesh=cabinet, joint=joint, robot_name="cab", filename_prefix="t",
                   mesh_format="obj", frame="source")
    urdf, glb = out.result
    assert os.path.isfile(urdf) and os.path.isfile(glb) and urdf.endswith("cab.urdf")
    rel = out.ui.as_dict()["result"][0] if hasattr(out.ui, "as_dict") else out.ui["result"][0]
    assert rel.startswith("atop/t_00001/") and rel.endswith("animated.glb")


def test_search_snaps_noisy_axes_only_when_asked(node_classes, cabinet):
    seq = run_node(node_classes["GroundTruthPointSequence"], mesh=cabinet, part_name="door", num_frames=10,
                   num_points=2000, noise=0.01, outliers=0.2, subsample=10, drop_correspondence=0.0, seed=1).result[0]
    snapped, _ = run_node(node_classes["OBBAxisSearch"], points=seq, mesh=cabinet, joint_type="auto", refine=True,
                          snap_to_object_axes=True).result
    free, _ = run_node(node_classes["OBBAxisSearch"], points=seq, mesh=cabinet, joint_type="auto", refine=True,
                       snap_to_object_axes=False).result
    assert "snapped" in snapped.method and "snapped" not in free.method
    assert max(abs(snapped.axis)) == 1.0  # the cabinet's hinge is a coordinate axis


def test_bad_part_is_a_clear_error(node_classes, cabinet):
    with pytest.raises(ValueError, match=r"^ATOP Ground-Truth Point Sequence: part 'lid' not found"):
        run_node(node_classes["GroundTruthPointSequence"], mesh=cabinet, part_name="lid", num_frames=4, num_points=100,
                 noise=0.0, outliers=0.0, subsample=1, drop_correspondence=0.0, seed=0)
