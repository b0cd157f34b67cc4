"""The ACAE on modelled pseudo-ground truth: does it pull the skeleton formats' depths together?

A separate-head model's pseudo-GT is reliable in the image plane and much less so in depth, and
each skeleton format comes from its own output channels, so one format as a whole can sit at
another depth than the others: the cross-format inconsistency the consistency fine-tuning exists
to remove. Its ACAE is fitted to that pseudo-GT; only if the ACAE does not reproduce the
inconsistency can the fine-tuning remove it. This module models such pseudo-GT on the synthetic
world's hidden body, where every format of every pose is known exactly:

    clean:  all six synthetic formats of random bodies and motions, camera frame, 3.5-6.5 m away
    noisy:  clean + N(0, plane_sigma) on camera x and y per joint
                  + N(0, depth_sigma) in depth per joint
                  + N(0, offset_sigma) in depth per (example, format): the inconsistency
    depth noise along camera z ('z') or along each joint's viewing ray ('ray': the projection
    stays where it was, as for an estimate whose 2D is right and whose depth is wrong).

Measured on held-out poses, in mm:
    clean_recon_mm: mean Euclidean distance between ACAE(clean) and clean;
    depth_error_mm: mean |z| error of ACAE(noisy) against clean (input: that of noisy);
    depth_inconsistency_mm: per example, the standard deviation (ddof 1) over formats of the
        format's mean depth error, then RMS over examples: 0 when all formats agree in depth,
        however far they all are from the truth (input: about offset_sigma).

    python -m eval.acae_depth_noise [--train-poses=24000] [--set loss=3d --set steps=3000 ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from eval.consistency import hidden_world_poses, synthetic_formats
from posepile import cli
from posepile import joints as joint_registry


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """The modelled pseudo-GT errors (mm); see the module docstring."""
    plane_sigma_mm: float = 8.0
    depth_sigma_mm: float = 40.0
    offset_sigma_mm: float = 60.0
    along: str = 'z'

    def __post_init__(self):
        if self.along not in ('z', 'ray'):
            raise ValueError(f"NoiseModel.along must be 'z' or 'ray', got {self.along!r}")


@dataclasses.dataclass
class PoseSet:
    """Poses of all formats, one row per person.

    Attributes:
        poses: [N, J, 3] float32 camera frame, mm (z > 0).
        joint_names: J union names, the formats' joints one format after another.
        format_of_joint: [J] int, index into `formats`.
        formats: the format names.
    """
    poses: np.ndarray
    joint_names: list[str]
    format_of_joint: np.ndarray
    formats: tuple[str, ...]


def clean_camera_poses(num_poses: int, seed: int, formats: Sequence[str] | None = None,
                       distance_mm: tuple[float, float] = (3500.0, 6500.0)) -> PoseSet:
    """All formats of random hidden-world bodies and motions, each seen by a level camera at
    1.5 m height from a random heading and distance (camera frame: x right, y down, z forward)."""
    formats = tuple(formats or synthetic_formats())
    world = hidden_world_poses(num_poses, seed, formats)  # {format: [S, J_f, 3]} world, z up
    points = np.concatenate([world[f] for f in formats], axis=1)
    rng = np.random.default_rng([seed, 1])
    n = len(points)
    ground = points[..., :2].mean(axis=1, keepdims=True)
    yaw = rng.uniform(-np.pi, np.pi, n)[:, None]
    x, y = points[..., 0] - ground[..., 0], points[..., 1] - ground[..., 1]
    x, y = np.cos(yaw) * x - np.sin(yaw) * y, np.sin(yaw) * x + np.cos(yaw) * y
    lateral = rng.uniform(-800, 800, (n, 1))
    distance = rng.uniform(*distance_mm, (n, 1))
    camera = np.stack([x + lateral, 1500.0 - points[..., 2], y + distance], axis=-1)
    names = [n for f in formats for n in joint_registry.union_names(f)]
    format_of_joint = np.concatenate([np.full(world[f].shape[1], i)
                                      for i, f in enumerate(formats)])
    return PoseSet(camera.astype(np.float32), names, format_of_joint, formats)


def add_modelled_noise(clean: PoseSet, noise: NoiseModel, seed: int) -> np.ndarray:
    """[N, J, 3] float32 modelled pseudo-GT of clean.poses (module docstring)."""
    rng = np.random.default_rng([seed, 2])
    poses = np.asarray(clean.poses, np.float64)
    n, n_joints, _ = poses.shape
    offsets = rng.normal(0, noise.offset_sigma_mm, (n, len(clean.formats)))
    depth_error = (rng.normal(0, noise.depth_sigma_mm, (n, n_joints))
                   + offsets[:, clean.format_of_joint])
    plane = rng.normal(0, noise.plane_sigma_mm, (n, n_joints, 2))
    if noise.along == 'z':
        noisy = poses + np.concatenate([plane, depth_error[..., None]], axis=-1)
    else:
        # Along the viewing ray: p * (z + dz) / z keeps x/z and y/z.
        noisy = poses * (1 + depth_error / poses[..., 2])[..., None]
        noisy[..., :2] += plane
    return noisy.astype(np.float32)


def depth_inconsistency_mm(pred: np.ndarray, clean: PoseSet) -> float:
    """RMS over examples of the std (ddof 1) over formats of each format's mean depth error."""
    error = np.asarray(pred, np.float64)[..., 2] - np.asarray(clean.poses, np.float64)[..., 2]
    n_formats = len(clean.formats)
    one_hot = np.eye(n_formats)[clean.format_of_joint]  # [J, F]
    per_format = error @ one_hot / one_hot.sum(axis=0)  # [N, F]
    return float(np.sqrt(np.mean(np.var(per_format, axis=1, ddof=1))))


def evaluate(model, clean: PoseSet, noisy: np.ndarray) -> dict[str, float]:
    """The module docstring's measures of an ACAE (callable [N, J, 3] -> [N, J, 3], mm) and of
    the noisy input itself ('input_*')."""
    recon_clean = np.asarray(model(clean.poses), np.float64)
    recon_noisy = np.asarray(model(noisy), np.float64)
    truth = np.asarray(clean.poses, np.float64)
    return {
        'clean_recon_mm': float(np.linalg.norm(recon_clean - truth, axis=-1).mean()),
        'depth_error_mm': float(np.abs(recon_noisy[..., 2] - truth[..., 2]).mean()),
        'depth_inconsistency_mm': depth_inconsistency_mm(recon_noisy, clean),
        'input_depth_error_mm': float(np.abs(noisy[..., 2] - truth[..., 2]).mean()),
        'input_depth_inconsistency_mm': depth_inconsistency_mm(noisy, clean),
    }


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m eval.acae_depth_noise',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--train-poses', type=int, default=24000)
    parser.add_argument('--test-poses', type=int, default=3000)
    parser.add_argument('--seed', type=int, default=0,
                        help='poses, noise and (unless --set seed=...) the fit')
    parser.add_argument('--along', default='z', choices=('z', 'ray'))
    parser.add_argument('--set', action='append', default=[], metavar='FIELD=JSON',
                        help='an acae.train.TrainConfig field (repeatable), e.g. loss="3d"')
    parser.add_argument('--json', default=None, help='also write the numbers here')
    return parser


def run(args: argparse.Namespace) -> int:
    from acae import train, weight_stats

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition('=')
        if not sep:
            raise ValueError(f'--set: expected FIELD=VALUE, got {item!r}')
        overrides[key] = _parse_value(value)
    if isinstance(overrides.get('lr_drops'), list):
        overrides['lr_drops'] = tuple(overrides['lr_drops'])
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(train.TrainConfig)})
    if unknown:
        raise ValueError(f'--set: acae.train.TrainConfig has no field {", ".join(unknown)}')
    config = train.TrainConfig(**{'seed': args.seed, **overrides})
    # Checked before the fit, which takes a minute.
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        raise FileNotFoundError(f'{args.json}: its directory does not exist')
    noise = NoiseModel(along=args.along)
    train_clean = clean_camera_poses(args.train_poses, seed=2 * args.seed)
    test_clean = clean_camera_poses(args.test_poses, seed=2 * args.seed + 1)
    train_noisy = add_modelled_noise(train_clean, noise, 2 * args.seed)
    test_noisy = add_modelled_noise(test_clean, noise, 2 * args.seed + 1)
    start = time.perf_counter()
    model = train.train_acae(train_noisy, train_clean.joint_names, config, show_progress=False)
    seconds = time.perf_counter() - start
    result = evaluate(lambda p: model(p).numpy(), test_clean, test_noisy)
    stats = weight_stats.weight_statistics(*model.weights_numpy())
    result.update(fit_seconds=seconds, config=dataclasses.asdict(config), weights=stats)
    print(f'config: {overrides or "defaults"}; fit {seconds:.1f} s')
    print(f'clean reconstruction {result["clean_recon_mm"]:.1f} mm; depth error '
          f'{result["depth_error_mm"]:.1f} mm (input {result["input_depth_error_mm"]:.1f}); '
          f'cross-format depth inconsistency {result["depth_inconsistency_mm"]:.1f} mm (input '
          f'{result["input_depth_inconsistency_mm"]:.1f})')
    print(weight_stats.format_statistics(stats))
    if args.json:
        from posepile.atomic_io import write_json_atomic
        write_json_atomic(args.json, result)
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=True)


if __name__ == '__main__':
    sys.exit(main())
