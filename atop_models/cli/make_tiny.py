"""``python -m atop_models make-tiny DIR --layout diffusers|original``: random tiny ImageDream weights in the
real on-disk layouts (for tests and quick trials; the outputs are noise)."""
from __future__ import annotations

import logging


def register(subparsers) -> None:
    p = subparsers.add_parser("make-tiny", help="write random tiny ImageDream weights in a real on-disk layout")
    p.add_argument("dir", help="output folder (must not exist or be empty)")
    p.add_argument("--layout", choices=("diffusers", "original"), default="diffusers",
                   help="diffusers: DIR is a model folder like imagedream-ipmv-diffusers; original: DIR is laid out "
                        "like models/atop/ (imagedream/<file>, text_encoder/<name>/, image_encoder/<name>/)")
    p.add_argument("--file-format", choices=("pt", "ckpt", "safetensors"), default="pt",
                   help="file type of the single-file checkpoint (original layout)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..diffusion.tiny import make_tiny

    paths = make_tiny(args.dir, layout=args.layout, seed=args.seed, file_format=args.file_format)
    for name, path in paths.items():
        logging.getLogger("atop").info("%s: %s", name, path)
    return 0
