"""How each synthetic skeleton format is made from the hidden body: affine weight matrices.

`FORMAT_WEIGHTS[fmt]` is a [J_fmt, N_HIDDEN] float64 matrix whose rows sum to exactly 1, so
`joints = FORMAT_WEIGHTS[fmt] @ hidden_points` is an affine combination of hidden points
(equivariant to any rotation/translation of the body). The discrepancies mimic real datasets:
mocap hips lower and wider, a high neck and an extrapolated head top (negative weights), surface
markers offset from the skin, SMPL-like interior joints, COCO hips higher and wider.

`fit_format_map` gives the ground-truth affine map between two formats (least squares over
random bodies and poses), the reference for cross-skeleton consistency.
"""
from __future__ import annotations

import numpy as np

from posepile.synthetic import body as body_lib
from posepile.synthetic.formats import SYNTHETIC_2D_SKELETONS, SYNTHETIC_SKELETONS


def _mirror_hidden(name: str) -> str:
    if name.startswith('l') and 'r' + name[1:] in body_lib.HIDDEN_POINT_IDS:
        return 'r' + name[1:]
    return name


# Per format: joint -> {hidden point: weight}. Entries for left joints ('l...') are mirrored onto
# the right counterpart automatically; centre joints are listed as they are.
_SPECS: dict[str, dict[str, dict[str, float]]] = {
    'synmocap': {
        'pelv': {'lhip': 0.35, 'rhip': 0.35, 'sacrum': 0.15, 'pubis': 0.15},
        'lhip': {'lhip': 0.55, 'ltroch': 0.3, 'lknee': 0.15},
        'lkne': {'lknee': 0.6, 'lknlat': 0.4},
        'lank': {'lmallat': 0.5, 'lmalmed': 0.5},
        'ltoe': {'ltoetip': 0.6, 'lmt5': 0.4},
        'spin': {'spine1': 0.5, 'spine2': 0.5},
        'thor': {'spine3': 0.6, 'sternum': 0.2, 't4': 0.2},
        'neck': {'lacromion': 0.3, 'racromion': 0.3, 'jugular': 0.2, 'c7': 0.2},
        'head': {'lear': 0.25, 'rear': 0.25, 'lfhead': 0.125, 'rfhead': 0.125,
                 'lbhead': 0.125, 'rbhead': 0.125},
        'lsho': {'lshoulder': 0.7, 'lacromion': 0.3},
        'lelb': {'lepil': 0.5, 'lepim': 0.5},
        'lwri': {'lradial': 0.5, 'lulnar': 0.5},
    },
    'synhead': {
        'pelv': {'pelvis': 1.0},
        'lhip': {'lhip': 1.0},
        'lkne': {'lknee': 1.0},
        'lank': {'lankle': 1.0},
        'spin': {'spine1': 0.5, 'spine2': 0.5},
        'thor': {'neck': 0.6, 'spine3': 0.4},
        'neck': {'head': 0.7, 'neck': 0.3},
        'head': {'nose': 0.4, 'head': 0.3, 'crown': 0.3},
        'htop': {'headtop': 1.2, 'crown': -0.2},
        'lsho': {'lshoulder': 1.0},
        'lelb': {'lelbow': 1.0},
        'lwri': {'lwrist': 1.0},
    },
    'synmarker': {
        'lfhd': {'lfhead': 1.1, 'head': -0.1},
        'lbhd': {'lbhead': 1.1, 'head': -0.1},
        'c7': {'c7': 1.15, 'neck': -0.15},
        't10': {'t10': 1.1, 'spine2': -0.1},
        'clav': {'jugular': 1.0},
        'strn': {'sternum': 1.1, 'spine2': -0.1},
        'lasi': {'lasis': 1.0},
        'lpsi': {'lpsis': 1.0},
        'lsho': {'lacromion': 1.0},
        'lupa': {'lupperarm': 1.15, 'lshoulder': -0.075, 'lelbow': -0.075},
        'lelb': {'lepil': 1.0},
        'lfrm': {'lforearm': 1.0},
        'lwra': {'lradial': 1.0},
        'lwrb': {'lulnar': 1.0},
        'lfin': {'lfinger': 1.0},
        'lthi': {'lthigh': 1.15, 'lhip': -0.075, 'lknee': -0.075},
        'lkne': {'lknlat': 1.15, 'lknmed': -0.15},
        'ltib': {'lshin': 1.1, 'lknee': -0.05, 'lankle': -0.05},
        'lank': {'lmallat': 1.1, 'lmalmed': -0.1},
        'lhee': {'lheel': 1.0},
        'ltoe': {'ltoetip': 0.5, 'lmt5': 0.2, 'ltoe': 0.3},
    },
    'synsmpl': {
        'pelv': {'pelvis': 0.4, 'lhip': 0.3, 'rhip': 0.3},
        'lhip': {'lhip': 0.85, 'pubis': 0.15},
        'spi1': {'spine1': 0.7, 'spine2': 0.3},
        'lkne': {'lknee': 0.9, 'lpatella': 0.1},
        'spi2': {'spine2': 0.6, 'spine3': 0.4},
        'lank': {'lankle': 1.0},
        'spi3': {'spine3': 0.8, 'jugular': 0.1, 't4': 0.1},
        'lfoo': {'ltoe': 0.8, 'lmt5': 0.2},
        'neck': {'neck': 0.6, 'head': 0.2, 'throat': 0.1, 'c7': 0.1},
        'lcla': {'lclavicle': 0.6, 'lacromion': 0.2, 'jugular': 0.2},
        'head': {'head': 0.6, 'nose': 0.2, 'crown': 0.2},
        'lsho': {'lshoulder': 0.9, 'lclavicle': 0.1},
        'lelb': {'lelbow': 1.0},
        'lwri': {'lwrist': 1.0},
        'lhan': {'lhand': 0.5, 'lwrist': 0.2, 'lfinger': 0.3},
    },
    'syncoco': {
        'nose': {'nose': 1.0},
        'leye': {'leye': 1.0},
        'lear': {'lear': 1.0},
        'lsho': {'lshoulder': 0.6, 'lacromion': 0.4},
        'lelb': {'lelbow': 0.7, 'lepil': 0.3},
        'lwri': {'lwrist': 0.6, 'lradial': 0.2, 'lulnar': 0.2},
        'lhip': {'lhip': 0.55, 'ltroch': 0.25, 'lasis': 0.2},
        'lkne': {'lknee': 0.7, 'lpatella': 0.3},
        'lank': {'lankle': 0.6, 'lmallat': 0.2, 'lmalmed': 0.2},
    },
    'synmpii': {
        'lank': {'lankle': 0.7, 'lmallat': 0.3},
        'lkne': {'lknee': 1.0},
        'lhip': {'lhip': 0.7, 'lasis': 0.3},
        'pelv': {'lhip': 0.5, 'rhip': 0.5},
        'thor': {'lshoulder': 0.25, 'rshoulder': 0.25, 'neck': 0.5},
        'neck': {'head': 0.6, 'neck': 0.2, 'throat': 0.2},
        'htop': {'crown': 0.5, 'headtop': 0.5},
        'lsho': {'lshoulder': 1.0},
        'lelb': {'lelbow': 1.0},
        'lwri': {'lwrist': 1.0},
    },
    'syn2d': {
        'nose': {'nose': 1.0},
        'htop': {'headtop': 0.7, 'crown': 0.3},
        'neck': {'neck': 0.5, 'throat': 0.3, 'c7': 0.2},
        'lsho': {'lshoulder': 0.75, 'lacromion': 0.25},
        'lelb': {'lelbow': 0.8, 'lepil': 0.2},
        'lwri': {'lwrist': 0.8, 'lradial': 0.1, 'lulnar': 0.1},
        'pelv': {'lhip': 0.4, 'rhip': 0.4, 'pelvis': 0.2},
        'lhip': {'lhip': 0.6, 'ltroch': 0.2, 'lasis': 0.2},
        'lkne': {'lknee': 0.8, 'lpatella': 0.2},
        'lank': {'lankle': 0.7, 'lmallat': 0.15, 'lmalmed': 0.15},
    },
}
_ALL_SKELETONS = {**SYNTHETIC_SKELETONS, **SYNTHETIC_2D_SKELETONS}


def _build_weights(fmt: str) -> np.ndarray:
    names, _ = _ALL_SKELETONS[fmt]
    spec = dict(_SPECS[fmt])
    for joint, mix in list(spec.items()):
        if joint.startswith('l') and 'r' + joint[1:] in names:
            spec['r' + joint[1:]] = {_mirror_hidden(k): v for k, v in mix.items()}
    missing = [n for n in names if n not in spec]
    if missing:
        raise KeyError(f'format_weights: format {fmt!r} has no weights for joints {missing}')
    weights = np.zeros((len(names), body_lib.N_HIDDEN))
    for row, joint in enumerate(names):
        for hidden, w in spec[joint].items():
            weights[row, body_lib.HIDDEN_POINT_IDS[hidden]] += w
    sums = weights.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-12):
        bad = [names[i] for i in np.flatnonzero(~np.isclose(sums, 1.0, atol=1e-12))]
        raise ValueError(f'format_weights: rows of {fmt!r} do not sum to 1: {bad}')
    return weights


FORMAT_WEIGHTS: dict[str, np.ndarray] = {fmt: _build_weights(fmt) for fmt in _ALL_SKELETONS}
FORMAT_NAMES: tuple[str, ...] = tuple(SYNTHETIC_SKELETONS)
"""The 3D formats (every test frame labels all of them)."""
FORMAT_NAMES_2D: tuple[str, ...] = tuple(SYNTHETIC_2D_SKELETONS)
"""The 2D-only formats (labelled in image coordinates by the 2D-only datasets)."""


def format_joints(fmt: str, hidden_points: np.ndarray) -> np.ndarray:
    """[..., N_HIDDEN, 3] hidden points (mm, any frame) -> [..., J_fmt, 3] joints of `fmt`."""
    if fmt not in FORMAT_WEIGHTS:
        raise KeyError(f'unknown synthetic format {fmt!r}; known: {FORMAT_NAMES}')
    return np.einsum('jp,...pc->...jc', FORMAT_WEIGHTS[fmt], hidden_points)


def fit_format_map(src: str, dst: str, num_samples: int = 400,
                   seed: int = 0) -> tuple[np.ndarray, float]:
    """The least-squares affine map from format `src` to format `dst`.

    Fits A [J_dst, J_src] with rows summing to 1 (so dst ~ A @ src is equivariant to rigid and
    affine transforms of the pose) over `num_samples` random bodies and poses of the hidden world.
    Returns (A, RMS residual in mm over all dst joints and coordinates).
    """
    from posepile.synthetic import poses as poses_lib  # local: poses imports body only

    rng = np.random.default_rng(seed)
    n_bodies = max(1, num_samples // 40)
    samples = []
    for _ in range(n_bodies):
        body = body_lib.sample_body(rng)
        motion = poses_lib.sample_motion(rng, body, 200)
        pick = rng.choice(200, num_samples // n_bodies, replace=False)
        samples.append(body_lib.forward_kinematics(
            body, motion.pose_deg[pick], motion.root_rot[pick], motion.root_pos[pick]))
    hidden = np.concatenate(samples)  # [S, P, 3]
    x = format_joints(src, hidden)  # [S, Js, 3]
    y = format_joints(dst, hidden)  # [S, Jd, 3]
    # Rows summing to 1: y - x_0 = sum_{k>0} a_k (x_k - x_0); solve for a_{1..} then a_0 = 1 - sum.
    design = (x[:, 1:] - x[:, :1]).transpose(0, 2, 1).reshape(-1, x.shape[1] - 1)
    target = (y - x[:, :1]).transpose(0, 2, 1).reshape(-1, y.shape[1])
    rest, *_ = np.linalg.lstsq(design, target, rcond=None)  # [Js-1, Jd]
    a = np.concatenate([1 - rest.sum(axis=0, keepdims=True), rest], axis=0).T
    residual = np.einsum('ds,nsc->ndc', a, x) - y
    return a, float(np.sqrt(np.mean(residual ** 2)))
