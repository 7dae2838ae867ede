"""The benchmarks' frozen split: what is measured to tune the lift, and what is only ever reported.

The validation split is fixed here once and never changed to suit a result: lift settings, thresholds and
rules are chosen on the tuning objects only, and the validation objects are measured with whatever that
gives. Both are reported side by side.

- Dev objects (``--data``): the objects listed in ``VALIDATION_DEV_OBJECTS`` are validation, the others
  tuning. They were picked, before any measurement with the split, to cover the kinds of the dev set: lids
  on a box, a door, an oven with its door and knobs, and a slide (a pot's lid).
- Procedural objects: tuning objects use seeds below ``VALIDATION_SEED_START`` (``--procedural N`` takes
  the first N of the category-major order, seeds 0, 1, ...), validation objects use the seeds
  ``VALIDATION_PROCEDURAL_SEEDS`` of every category.
"""
from __future__ import annotations

SPLITS = ("all", "tuning", "validation")
VALIDATION_DEV_OBJECTS = ("pm_100021_kitchenpot", "pm_100129_box", "pm_46427_storagefurniture", "pm_101940_oven")
VALIDATION_SEED_START = 1000
VALIDATION_PROCEDURAL_SEEDS = (1000, 1001, 1002)


def dev_object_in_split(object_id: str, split: str) -> bool:
    """Whether a dev object (manifest id) belongs to ``split`` ("all", "tuning" or "validation")."""
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    return split == "all" or (object_id in VALIDATION_DEV_OBJECTS) == (split == "validation")


def procedural_objects(count: int, split: str, categories: tuple[str, ...]) -> list[tuple[str, int]]:
    """(category, seed) of the procedural objects of ``split``: for "tuning" (and "all") the first ``count``
    in category-major order from seed 0 (tuning seeds stay below ``VALIDATION_SEED_START``); for
    "validation" every category at each seed of ``VALIDATION_PROCEDURAL_SEEDS`` (``count`` 0: all of them)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; choose one of {', '.join(SPLITS)}")
    if split == "validation":
        objects = [(c, s) for s in VALIDATION_PROCEDURAL_SEEDS for c in categories]
        return objects[:count] if count else objects
    objects = [(categories[i % len(categories)], i // len(categories)) for i in range(count)]
    if objects and objects[-1][1] >= VALIDATION_SEED_START:
        raise ValueError(f"{count} tuning objects would reach the validation seeds ({VALIDATION_SEED_START} and up)")
    return objects


def split_of(object_id: str) -> str:
    """"validation" or "tuning" for a benchmark object id: a dev manifest id, or a procedural "category_seed"."""
    if object_id.startswith("pm_"):
        return "validation" if object_id in VALIDATION_DEV_OBJECTS else "tuning"
    seed = object_id.rsplit("_", 1)[-1]
    return "validation" if seed.isdigit() and int(seed) >= VALIDATION_SEED_START else "tuning"
