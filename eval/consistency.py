"""Cross-skeleton consistency of multi-format predictions (synthetic world, all formats known).

A model that predicts several skeleton formats of the same person should predict them as one
body: each format's joints should be where the other formats' joints say they are. For format f,
the prediction implied by the others is A_f @ concat(other formats' predicted joints), where A_f
[J_f, sum J_others] is the ground-truth affine map (rows sum to 1) fitted by least squares on
ground-truth poses in which every format is known (by default poses of the synthetic world's
hidden-body model; on GT it reproduces f up to a small residual, the "GT floor").
The consistency error of f is the distance between f's own prediction and the implied one.

Affine rows make A_f commute with rotations and translations, so the total error is invariant to
the frame; the split into depth (camera z) and image-plane (camera x, y) parts needs the camera
frame (millimetres).

    python -m eval.consistency --predictions=PRED.npz [--fit-on=hidden|gt] [--json=OUT.json]
        [--acae=weights.npz]
PRED.npz as written by `metrabs.pseudo_gt` or `eval.run` ('poses' [N, J, 3] mm camera frame,
'joint_names' [J]; with --fit-on=gt also 'true3d_cam', NaN where unlabelled). --acae adds a row
per file for its predictions passed through an ACAE (acae.export weights): how much the ACAE
by itself pulls the formats together (what output regularisation pushes the model towards).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from posepile import cli
from posepile import joints as joint_registry
from posepile.npz_io import read_npz


@dataclasses.dataclass
class ConsistencyResult:
    """Consistency errors in mm (camera frame), means over examples and joints.

    Attributes:
        mean_mm, depth_mm, plane_mm: over all (format, joint) entries: Euclidean error, |dz| and
            sqrt(dx^2 + dy^2).
        per_format: format -> {'mean_mm', 'depth_mm', 'plane_mm'}.
        n_examples: poses evaluated.
    """
    mean_mm: float
    depth_mm: float
    plane_mm: float
    per_format: dict[str, dict[str, float]]
    n_examples: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def synthetic_formats() -> tuple[str, ...]:
    from posepile.synthetic.format_weights import FORMAT_NAMES
    return FORMAT_NAMES


def split_formats(poses: np.ndarray, joint_names: Sequence[str],
                  formats: Sequence[str], source: str = 'predictions') -> dict[str, np.ndarray]:
    """[N, J, 3] poses over `joint_names` (union naming) -> {format: [N, J_f, 3]}.

    Raises KeyError naming `source` and the missing joints if a format is not fully present.
    """
    ids = {str(n): i for i, n in enumerate(joint_names)}
    out = {}
    for fmt in formats:
        names = joint_registry.union_names(fmt)
        missing = [n for n in names if n not in ids]
        if missing:
            raise KeyError(f'{source}: joint_names lack {len(missing)} joints of format {fmt!r}, '
                           f'e.g. {missing[:5]}')
        out[fmt] = np.asarray(poses)[:, [ids[n] for n in names]]
    return out


def fit_implied_maps(gt: Mapping[str, np.ndarray], ridge: float = 1e-6
                     ) -> dict[str, np.ndarray]:
    """Per format f, the least-squares affine map from the other formats' joints to f's.

    Args:
        gt: format -> [N, J_f, 3] ground-truth poses of the same N people (any common frame).
    Returns:
        format -> A_f [J_f, sum of J_g over the other formats g, in the order of `gt`];
        rows sum to 1 (acae.model.fit_affine_weights).
    """
    from acae.model import fit_affine_weights  # the one least-squares affine fit

    if len(gt) < 2:
        raise ValueError(f'fit_implied_maps: need at least two formats, got {list(gt)}')
    formats = list(gt)
    return {f: fit_affine_weights(np.concatenate([gt[g] for g in formats if g != f], axis=1),
                                  gt[f], ridge)
            for f in formats}


def implied_poses(poses: Mapping[str, np.ndarray], maps: Mapping[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """format -> [N, J_f, 3]: each format as implied by the other formats' poses (same order of
    formats as the maps were fitted with)."""
    formats = list(maps)
    out = {}
    for f in formats:
        others = np.concatenate([np.asarray(poses[g], np.float64) for g in formats if g != f],
                                axis=1)
        if others.shape[1] != maps[f].shape[1]:
            raise ValueError(f'implied_poses: format {f!r}: the other formats have '
                             f'{others.shape[1]} joints but its map expects {maps[f].shape[1]}')
        # Centring first keeps float rounding at the body's scale, not the camera distance's.
        centre = others.mean(axis=1, keepdims=True)
        out[f] = np.einsum('ab,nbc->nac', maps[f], others - centre) + centre
    return out


def consistency(poses: Mapping[str, np.ndarray], maps: Mapping[str, np.ndarray]
                ) -> ConsistencyResult:
    """Consistency errors of per-format poses (format -> [N, J_f, 3], camera frame, mm).

    Poses with any non-finite coordinate are skipped (for all formats alike).
    """
    formats = list(maps)
    missing = [f for f in formats if f not in poses]
    if missing:
        raise KeyError(f'consistency: poses lack formats {missing}')
    finite = np.all([np.isfinite(poses[f]).all(axis=(1, 2)) for f in formats], axis=0)
    if not finite.any():
        raise ValueError('consistency: no pose has finite coordinates for every format')
    poses = {f: np.asarray(poses[f], np.float64)[finite] for f in formats}
    implied = implied_poses(poses, maps)
    per_format, totals = {}, []
    for f in formats:
        diff = poses[f] - implied[f]
        parts = np.stack([np.linalg.norm(diff, axis=-1), np.abs(diff[..., 2]),
                          np.linalg.norm(diff[..., :2], axis=-1)], axis=-1)  # [N, J_f, 3]
        per_format[f] = dict(zip(('mean_mm', 'depth_mm', 'plane_mm'),
                                 map(float, parts.mean(axis=(0, 1)))))
        totals.append(parts.reshape(-1, 3))
    overall = np.concatenate(totals).mean(axis=0)
    return ConsistencyResult(float(overall[0]), float(overall[1]), float(overall[2]),
                             per_format, int(finite.sum()))


def hidden_world_poses(num_samples: int = 800, seed: int = 0,
                       formats: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """All-format ground-truth poses {format: [S, J_f, 3]} (world mm) of random bodies and motions
    of the synthetic world's hidden-body model, for fitting the implied-format maps."""
    from posepile.synthetic import body as body_lib
    from posepile.synthetic import format_weights
    from posepile.synthetic import poses as poses_lib

    formats = list(formats or format_weights.FORMAT_NAMES)
    rng = np.random.default_rng(seed)
    frames_per_motion = 200
    n_bodies = max(1, num_samples // 40)
    per_body = max(1, num_samples // n_bodies)
    hidden = []
    for _ in range(n_bodies):
        body = body_lib.sample_body(rng)
        motion = poses_lib.sample_motion(rng, body, frames_per_motion)
        pick = rng.choice(frames_per_motion, min(per_body, frames_per_motion), replace=False)
        hidden.append(body_lib.forward_kinematics(
            body, motion.pose_deg[pick], motion.root_rot[pick], motion.root_pos[pick]))
    hidden = np.concatenate(hidden)
    return {f: format_weights.format_joints(f, hidden) for f in formats}


def acae_reconstruction(poses: np.ndarray, joint_names: Sequence[str], weights_path: str
                        ) -> np.ndarray:
    """poses [N, J, 3] (camera frame, mm) with the ACAE's joints replaced by their ACAE
    reconstruction W_dec @ W_enc @ p (the ACAE's joints matched by name; all must be present)."""
    from acae import export as acae_export

    arrays = acae_export.load_weights(weights_path)
    ids = {str(n): i for i, n in enumerate(joint_names)}
    acae_names = [str(n) for n in arrays['joint_names']]
    missing = [n for n in acae_names if n not in ids]
    if missing:
        raise KeyError(f'{weights_path}: {len(missing)} ACAE joints are not predicted, e.g. '
                       f'{missing[:5]}')
    index = np.array([ids[n] for n in acae_names])
    model = acae_export.model_from_weights(arrays)
    out = np.array(poses, np.float32)
    out[:, index] = model(out[:, index]).numpy()
    return out


def evaluate_file(path: str, fit_on: str = 'hidden', formats: Sequence[str] | None = None,
                  acae_weights: str | None = None
                  ) -> tuple[ConsistencyResult, ConsistencyResult]:
    """(result of the predictions, GT floor) for a predictions npz (module docstring); with
    acae_weights, of the predictions' ACAE reconstruction (acae_reconstruction).

    The GT floor is the same metric on ground truth: with fit_on='hidden', on held-out
    hidden-world poses; with fit_on='gt', on the file's own 'true3d_cam'.
    """
    formats = list(formats or synthetic_formats())
    data = read_npz(path, ('poses', 'joint_names') + (('true3d_cam',) if fit_on == 'gt' else ()),
                    'a predictions .npz (poses, joint_names)')
    pred = data['poses']
    names = [str(n) for n in data['joint_names']]
    truth = data['true3d_cam'] if fit_on == 'gt' else None
    if pred.ndim != 3 or pred.shape[1:] != (len(names), 3):
        raise ValueError(f'{path}: field "poses" must be [N, {len(names)}, 3], '
                         f'got {pred.shape}')
    if acae_weights is not None:
        pred = acae_reconstruction(pred, names, acae_weights)
    pred_formats = split_formats(pred, names, formats, source=path)
    if fit_on == 'gt':
        gt_formats = split_formats(truth, names, formats, source=f'{path} (true3d_cam)')
        complete = np.all([np.isfinite(g).all(axis=(1, 2)) for g in gt_formats.values()], axis=0)
        if complete.sum() < 2:
            raise ValueError(f'{path}: field "true3d_cam" has {complete.sum()} poses with every '
                             f'format labelled; need the synthetic test split')
        gt_formats = {f: g[complete] for f, g in gt_formats.items()}
        maps = fit_implied_maps(gt_formats)
        floor = consistency(gt_formats, maps)
    elif fit_on == 'hidden':
        maps = fit_implied_maps(hidden_world_poses(seed=0, formats=formats))
        floor = consistency(hidden_world_poses(num_samples=400, seed=1, formats=formats), maps)
    else:
        raise ValueError(f"fit_on must be 'hidden' or 'gt', got {fit_on!r}")
    return consistency(pred_formats, maps), floor


def format_table(rows: Mapping[str, ConsistencyResult]) -> str:
    """Markdown table: one row per model (name -> result), overall mean / depth / image plane
    and the per-format means, in mm."""
    formats = list(next(iter(rows.values())).per_format)
    header = ['model', 'mean', 'depth', 'image plane'] + formats
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for name, r in rows.items():
        cells = [name] + [f'{v:.1f}' for v in (r.mean_mm, r.depth_mm, r.plane_mm)]
        cells += [f'{r.per_format[f]["mean_mm"]:.1f}' for f in formats]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m eval.consistency',
        description='Cross-skeleton consistency (mm) of multi-format predictions.')
    parser.add_argument('--predictions', required=True, action='append',
                        help='NAME=PRED.npz or PRED.npz (repeatable: one table row each)')
    parser.add_argument('--fit-on', default='hidden', choices=('hidden', 'gt'),
                        help='fit the implied-format maps on hidden-world poses or on the '
                        "file's own ground truth")
    parser.add_argument('--json', default=None, help='also write all numbers here')
    parser.add_argument('--acae', default=None, metavar='WEIGHTS.npz',
                        help="also each file's predictions passed through this ACAE")
    return parser


def run(args: argparse.Namespace) -> int:
    rows, floor, everything = {}, None, {}
    for item in args.predictions:
        name, _, path = item.rpartition('=')
        name = name or path
        runs = [(name, None)] + ([(f'{name} -> ACAE', args.acae)] if args.acae else [])
        for row, acae_weights in runs:
            rows[row], floor = evaluate_file(path, args.fit_on, acae_weights=acae_weights)
            everything[row] = rows[row].to_dict()
    rows['ground truth (floor)'] = floor
    everything['ground truth (floor)'] = floor.to_dict()
    print(format_table(rows))
    if args.json:
        from posepile.atomic_io import write_json_atomic
        write_json_atomic(args.json, everything)
    return 0


def main(argv=None) -> int:
    return cli.run(build_parser, run, argv, uses_tensorflow=lambda args: args.acae is not None)


if __name__ == '__main__':
    sys.exit(main())
