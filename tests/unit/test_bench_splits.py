"""The frozen benchmark split: tuning and validation objects never overlap, and the benchmarks select them."""
import argparse
import os

import pytest

from atop_models.cli.bench.joints import benchmark_objects
from atop_models.cli.bench.splits import (VALIDATION_DEV_OBJECTS, VALIDATION_PROCEDURAL_SEEDS, VALIDATION_SEED_START,
                                          dev_object_in_split, procedural_objects, split_of)
from atop_models.mesh.procedural import CATEGORIES

DEV = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "articulated_dev")


def test_procedural_tuning_and_validation_objects_are_disjoint():
    tuning = procedural_objects(10 * len(CATEGORIES), "tuning", CATEGORIES)
    validation = procedural_objects(0, "validation", CATEGORIES)
    assert len(validation) == len(CATEGORIES) * len(VALIDATION_PROCEDURAL_SEEDS)
    assert not set(tuning) & set(validation)
    assert {split_of(f"{c}_{s}") for c, s in tuning} == {"tuning"}
    assert {split_of(f"{c}_{s}") for c, s in validation} == {"validation"}
    assert tuning[:2] == [(CATEGORIES[0], 0), (CATEGORIES[1], 0)]  # --procedural N: category-major from seed 0
    assert procedural_objects(3, "validation", CATEGORIES) == validation[:3]
    with pytest.raises(ValueError, match="validation seeds"):
        procedural_objects(VALIDATION_SEED_START * len(CATEGORIES) + 1, "tuning", CATEGORIES)


def test_dev_objects_split():
    for oid in VALIDATION_DEV_OBJECTS:
        assert dev_object_in_split(oid, "validation") and not dev_object_in_split(oid, "tuning")
        assert split_of(oid) == "validation"
    assert dev_object_in_split("pm_156_faucet", "tuning") and split_of("pm_156_faucet") == "tuning"
    assert dev_object_in_split("pm_156_faucet", "all")
    with pytest.raises(ValueError, match="unknown split"):
        dev_object_in_split("pm_156_faucet", "test")


@pytest.mark.skipif(not os.path.isdir(DEV), reason="the dev data (../shared/data/articulated_dev) is not here")
def test_benchmarks_read_only_the_split_asked_for():
    args = argparse.Namespace(data=DEV, procedural=0, split="validation")
    assert sorted(oid for oid, _, _, _ in benchmark_objects(args)) == sorted(VALIDATION_DEV_OBJECTS)
    args = argparse.Namespace(data=None, procedural=2, split="validation")
    assert [oid for oid, _, _, _ in benchmark_objects(args)] == [f"{c}_{VALIDATION_PROCEDURAL_SEEDS[0]}"
                                                                 for c in CATEGORIES[:2]]
