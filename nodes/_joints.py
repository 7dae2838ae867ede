"""The ATOP_JOINT payload is a Joint or a list of Joints (several parts of one object)."""
from __future__ import annotations


def joint_list(joint) -> list:
    return list(joint) if isinstance(joint, (list, tuple)) else [joint]


def joint_moving(joint, part: str):
    """The given joint that moves ``part`` (else the first one), re-targeted at ``part``."""
    joints = joint_list(joint)
    return next((j for j in joints if j.child == part), joints[0]).replace(child=part)
