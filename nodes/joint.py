"""Joint stage: OBB axis search on a point sequence, ground-truth point sequences, evaluation."""
from __future__ import annotations

from ..atop_models.errors import InputError
from ..atop_models.geometry.cameras import imagedream_rig
from ..atop_models.geometry.joint_search import SearchSettings, estimate_joint
from ..atop_models.geometry.metrics import joint_errors, report
from ..atop_models.geometry.point_sequences import point_sequence_from_joint
from ..atop_models.mesh.articulate import governing_joint
from ..atop_models.render.motion import opening_values
from ..atop_models.render.overlay import axis_overlay
from ._comfy import images_to_comfy, io, ui, user_errors
from ._joints import joint_list
from .types import CamerasType, JointType, PartMeshType, PointSequenceType


def _gt_joint(mesh, part: str):
    part = mesh.part_names[mesh.part_index(part)]
    j = governing_joint(mesh, part)
    if j is None:
        articulated = sorted({j.child for j in mesh.joints}) or ["none"]
        raise InputError(f"part '{part}' has no ground-truth joint in this mesh; articulated parts: "
                         f"{', '.join(articulated)}")
    return j


class OBBAxisSearch(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="OBBAxisSearch",
            display_name="ATOP OBB Axis Search",
            category="ATOP/joint",
            description="Finds the part's joint from its per-frame points: the paper's search over oriented-"
                        "bounding-box candidates, then a continuous refinement (and a correspondence fit when "
                        "points are tracked).",
            inputs=[
                PointSequenceType.Input("points", tooltip="Per-frame points with moving-part labels (frame 0 = rest)."),
                PartMeshType.Input("mesh", tooltip="The mesh, for the overlay render and the part name."),
                io.Combo.Input("joint_type", options=["auto", "revolute", "prismatic"], default="auto",
                               tooltip="Force the joint type, or let the search choose."),
                io.Boolean.Input("refine", default=True,
                                 tooltip="Refine the best candidates continuously (off: the paper's discrete result)."),
                io.Boolean.Input("snap_to_object_axes", default=True,
                                 tooltip="On noisy points, prefer an axis of the object's own frame (its coordinate "
                                         "axes, then the static part's principal axes) within "
                                         f"{SearchSettings.snap_degrees:g} degrees of the refined one when it "
                                         f"explains the points within {SearchSettings.snap_tolerance:.0%}."),
                CamerasType.Input("cameras", optional=True,
                                  tooltip="Cameras for the overlay (default: 4 ImageDream views at 256 px)."),
            ],
            outputs=[
                JointType.Output(display_name="joint", tooltip="Estimated joint: type, axis, origin, limits, "
                                 "score, method and ranked candidates."),
                io.Image.Output(display_name="overlay", tooltip="The part moved to its upper limit (tinted) and "
                                "the axis drawn in red, one image per view."),
            ],
        )

    @classmethod
    def execute(cls, points, mesh, joint_type, refine, snap_to_object_axes=True, cameras=None) -> io.NodeOutput:
        with user_errors("OBBAxisSearch"):
            part = mesh.part_names[mesh.part_index(points.part_name)] if points.part_name else ""
            settings = SearchSettings() if snap_to_object_axes else SearchSettings(snap_tolerance=0.0)
            joint = estimate_joint(points, joint_type=joint_type, refine_result=refine, settings=settings)
            gt = governing_joint(mesh, part) if part else None
            joint = joint.replace(child=part, parent=gt.parent if gt is not None else None)
            rig = cameras if cameras is not None else imagedream_rig(resolution=256)
            image = axis_overlay(mesh, joint, rig, value=joint.limits[1])
        return io.NodeOutput(joint, images_to_comfy(image))


class GroundTruthPointSequence(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="GroundTruthPointSequence",
            display_name="ATOP Ground-Truth Point Sequence",
            category="ATOP/joint",
            description="Points on the mesh with the part moved along its ground-truth joint, optionally "
                        "corrupted: test the joint stage without the diffusion stages.",
            inputs=[
                PartMeshType.Input("mesh", tooltip="Mesh with ground-truth joints (PartNet-Mobility or procedural)."),
                io.String.Input("part_name", default="door", tooltip="The part that moves."),
                io.Int.Input("num_frames", default=10, min=2, max=64, tooltip="Frames from rest to the upper limit."),
                io.Int.Input("num_points", default=2000, min=16, max=100000, tooltip="Points on the moving part per frame."),
                io.Float.Input("noise", default=0.0, min=0.0, max=0.2, step=0.001,
                               tooltip="Gaussian noise, fraction of the object's bounding-box diagonal."),
                io.Float.Input("outliers", default=0.0, min=0.0, max=0.9, step=0.01,
                               tooltip="Fraction of part points replaced by random points in the bounding box."),
                io.Int.Input("subsample", default=1, min=1, max=100, tooltip="Keep a random 1/K of the points per frame."),
                io.Float.Input("drop_correspondence", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Fraction of track ids removed (1 = no correspondences)."),
                io.Int.Input("seed", default=0, min=0, max=2**31 - 1, tooltip="Random seed of sampling and corruption."),
            ],
            outputs=[PointSequenceType.Output(display_name="points", tooltip="Per-frame points with labels and tracks.")],
        )

    @classmethod
    def execute(cls, mesh, part_name, num_frames, num_points, noise, outliers, subsample, drop_correspondence,
                seed) -> io.NodeOutput:
        with user_errors("GroundTruthPointSequence"):
            joint = _gt_joint(mesh, part_name)
            seq = point_sequence_from_joint(mesh, joint, opening_values(joint, num_frames), n_points=num_points,
                                            noise=noise, outliers=outliers, subsample=subsample,
                                            drop_correspondence=drop_correspondence, seed=seed)
        return io.NodeOutput(seq)


class EvaluateJoint(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="EvaluateJoint",
            display_name="ATOP Evaluate Joint",
            category="ATOP/joint",
            description="Compares an estimated joint with the mesh's ground-truth joint of the same part.",
            inputs=[
                JointType.Input("joint", tooltip="Estimated joint (the first one if a list)."),
                PartMeshType.Input("mesh", tooltip="Mesh with the ground-truth joint of that part."),
            ],
            outputs=[
                io.String.Output(display_name="report", tooltip="Type, axis error, position error, success."),
                io.Float.Output(display_name="axis_error_deg", tooltip="min(angle, 180 - angle) in degrees."),
                io.Float.Output(display_name="position_error", tooltip="Origin to ground-truth axis distance "
                                "divided by the bounding-box diagonal (revolute; -1 for prismatic)."),
                io.Boolean.Output(display_name="type_correct", tooltip="Whether the joint type matches."),
            ],
        )

    @classmethod
    def execute(cls, joint, mesh) -> io.NodeOutput:
        with user_errors("EvaluateJoint"):
            j = joint_list(joint)[0]
            err = joint_errors(j, _gt_joint(mesh, j.child), mesh.bbox_diagonal)
            text = f"{j.child}: {report(err)}; method: {j.method}"
        pos = -1.0 if err["pos_err_norm"] is None else float(err["pos_err_norm"])
        return io.NodeOutput(text, float(err["axis_err_deg"]), pos, bool(err["type_ok"]), ui=ui.PreviewText(text))


NODES = [OBBAxisSearch, GroundTruthPointSequence, EvaluateJoint]
