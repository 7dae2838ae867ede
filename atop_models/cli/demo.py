"""``python -m atop_models demo --out DIR``: the README's main job.

Runs the articulation pipeline on the bundled sample (a procedural cabinet, written to DIR/sample as GLB and
URDF, and as one mesh without parts, its outer shell, to paint in atop_paint_part): rest-state views, part masks, a reference clip, the part's motion, Gaussians lifted from it, the joint
by OBB axis search compared with the ground truth, a URDF folder, an animated GLB, a PNG contact sheet and a
summary. With ImageDream weights and a fine-tuned motion module (--model/--motion-module) the motion is
sampled from the text prompt; without them the sample's reference motion is lifted instead, and the output
says so."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("atop")


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the articulation pipeline on the bundled sample")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default %(default)s)")
    p.add_argument("--category", default="cabinet", help="procedural sample category (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sample seed (default %(default)s)")
    p.add_argument("--part", default="door", help="the part to articulate (default %(default)s)")
    p.add_argument("--prompt", default="", help="text prompt (default: a description of the part opening)")
    p.add_argument("--model", type=Path, default=None,
                   help="ImageDream weights (diffusers folder or original single file) for the text-driven path")
    p.add_argument("--motion-module", type=Path, default=None, help="fine-tuned motion-module safetensors")
    p.add_argument("--text-encoder", type=Path, default=None, help="text encoder folder (original checkpoints)")
    p.add_argument("--image-encoder", type=Path, default=None, help="image encoder folder (original checkpoints)")
    p.add_argument("--iterations", type=int, default=150, help="lift iterations (default %(default)s)")
    p.add_argument("--frames", type=int, default=10, help="motion frames (default %(default)s)")
    p.add_argument("--gaussians", type=int, default=2000, help="Gaussians in the lift (default %(default)s)")
    p.add_argument("--resolution", type=int, default=256, help="render resolution (default %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import InputError
    from ..export.animated_glb import write_animated_glb
    from ..export.contact_sheet import contact_sheet, save_png_atomic
    from ..export.glb import write_glb
    from ..export.urdf import write_urdf
    from ..geometry.metrics import joint_errors
    from ..mesh.merge import outer_shell
    from ..mesh.procedural import default_prompt, make_object
    from ..pipeline import ArticulateConfig, articulate
    from ..render.overlay import axis_overlay
    from ..training.clips import render_reference_clip, write_clip
    from ..types import MultiViewVideo

    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mesh = make_object(args.category, args.seed)
    part = mesh.part_names[mesh.part_index(args.part)]
    prompt = args.prompt or default_prompt(mesh, part)
    gt = mesh.joint_for_part(part)
    log.info("sample: procedural %s (seed %d), part '%s', prompt: %s", args.category, args.seed, part, prompt)

    # The bundled sample, as a user would load it; and as one mesh without parts, to paint (atop_paint_part).
    write_glb(mesh, out / "sample" / f"{args.category}.glb")
    write_glb(outer_shell(mesh)[0], out / "sample" / f"{args.category}_shell.glb")
    write_urdf(mesh, mesh.joints, out / "sample" / "urdf", robot_name=args.category)
    config = ArticulateConfig(num_frames=args.frames, lift_iterations=args.iterations, seed=args.seed,
                              num_gaussians=args.gaussians, resolution=args.resolution)
    clip = render_reference_clip(mesh, part, num_frames=args.frames, prompt=prompt, resolution=config.resolution)
    clip_dir = write_clip(clip, out / "reference_clip", overwrite=True)

    model = None
    if args.model is not None:
        from ..diffusion.checkpoints import load_model

        if args.motion_module is None:
            raise InputError("--model needs --motion-module: an untrained motion module generates no motion; "
                             "fine-tune one first (MotionModuleFinetune) or leave --model out")
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_model(args.model, text_encoder=args.text_encoder, image_encoder=args.image_encoder,
                           motion_module=args.motion_module, device=device,
                           dtype=torch.float16 if device == "cuda" else torch.float32)
        mode = "text-driven: the motion is sampled by the personalised ImageDream model from the prompt"
    else:
        mode = ("no ImageDream weights given: lifting the sample's reference motion (rendered from its "
                "ground-truth joint) with 'video' guidance instead of sampling it from the text prompt")
    log.info("mode: %s", mode)
    reference = MultiViewVideo(frames=clip.frames, rig=clip.rig, prompt=prompt, part_masks=clip.masks)
    result = articulate(mesh, part, prompt, config, model=model, reference=reference,
                        reference_label="reference motion (ground truth)",
                        on_stage=lambda s: log.info("stage: %s", s))

    joint = result.joint
    urdf = write_urdf(mesh, [joint], out / "articulated_urdf", robot_name=f"{args.category}_articulated")
    glb = write_animated_glb(mesh, [joint], out / f"{args.category}_articulated.glb")
    overlay = axis_overlay(mesh, joint, result.rig, value=float(joint.limits[1]))
    V, F = result.video.frames.shape[:2]
    frames_shown = sorted({0, F // 2, F - 1})
    rows = [("rest views", list(result.views)), ("part masks", list(result.masks))]
    rows += [(f"motion f{f}", [result.video.frames[v, f] for v in range(V)]) for f in frames_shown]
    rows += [("axis overlay", list(overlay))]
    sheet = save_png_atomic(contact_sheet(rows), out / "contact_sheet.png")

    errors = joint_errors(joint, gt, mesh.bbox_diagonal) if gt is not None else None
    summary = {
        "mode": mode,
        "motion_source": result.motion_source,
        "sample": {"category": args.category, "seed": args.seed, "part": part, "prompt": prompt},
        "estimated_joint": joint.to_dict(),
        "ground_truth_joint": gt.to_dict() if gt is not None else None,
        "errors": errors,
        "lift": {"backend": result.lift.backend, "info": result.lift.info,
                 "final_loss": float(np.nanmean(result.lift.losses[-10:]))},
        "files": {"urdf": str(urdf), "animated_glb": str(glb), "contact_sheet": str(sheet),
                  "reference_clip": str(clip_dir), "sample_glb": str(out / "sample" / f"{args.category}.glb"),
                  "sample_shell_glb": str(out / "sample" / f"{args.category}_shell.glb")},
        "seconds": {**{k: round(v, 2) for k, v in result.timings.items()},
                    "total": round(time.perf_counter() - started, 2)},
    }
    _write_json(out / "summary.json", summary)
    lines = [f"ATOP demo: {mode}", f"part '{part}' of a procedural {args.category}: \"{prompt}\"",
             f"estimated: {joint.type}, axis {np.round(joint.axis, 4).tolist()}, origin "
             f"{np.round(joint.origin, 4).tolist()}, limits {np.round(joint.limits, 4).tolist()} ({joint.method})"]
    if gt is not None:
        lines.append(f"truth:     {gt.type}, axis {np.round(gt.axis, 4).tolist()}, origin "
                     f"{np.round(gt.origin, 4).tolist()}, limits {np.round(gt.limits, 4).tolist()}")
        position = ("n/a (prismatic)" if errors["pos_err"] is None else
                    f"{errors['pos_err']:.4f} ({errors['pos_err_norm']:.4f} of the diagonal)")
        lines.append(f"errors:    axis {errors['axis_err_deg']:.3f} deg, position {position}, "
                     f"type {'ok' if errors['type_ok'] else 'WRONG'}")
    lines += [f"outputs in {out}: summary.json, contact_sheet.png, {Path(glb).name}, articulated_urdf/, "
              f"reference_clip/, sample/", f"total {summary['seconds']['total']:.1f} s"]
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    sys.stdout.write(text)
    return 0


def _write_json(path: Path, data: dict) -> None:
    from ..files import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(data, indent=2).encode())
