"""The hidden body of the synthetic world: kinematic tree, proportions, landmarks, kinematics.

Body frame (of every bone, at rest): x = the person's left, y = up, z = forward (right-handed).
World frame of the synthetic world: z up, ground plane z = 0, millimetres.

The hidden points are the joint centres of the kinematic tree plus surface/interior landmarks,
each fixed in the frame of one bone. No dataset labels them directly: every skeleton format is a
set of affine combinations of them (see `format_weights`), as real datasets are different
labellings of the same anatomy.
"""
from __future__ import annotations

import dataclasses

import numpy as np

# (name, parent, rest offset from the parent joint in units of stature, in the parent's frame).
# Heights follow standard anthropometric proportions (shoulder 0.818 H, hip 0.53 H, knee 0.285 H,
# ankle 0.039 H, upper arm 0.186 H, forearm 0.146 H, thigh 0.245 H).
_TREE = [
    ('pelvis', None, (0.0, 0.54, 0.0)),
    ('lhip', 'pelvis', (0.052, -0.03, 0.012)),
    ('lknee', 'lhip', (0.0, -0.245, 0.0)),
    ('lankle', 'lknee', (0.0, -0.236, -0.01)),
    ('ltoe', 'lankle', (0.0, -0.03, 0.105)),
    ('rhip', 'pelvis', (-0.052, -0.03, 0.012)),
    ('rknee', 'rhip', (0.0, -0.245, 0.0)),
    ('rankle', 'rknee', (0.0, -0.236, -0.01)),
    ('rtoe', 'rankle', (0.0, -0.03, 0.105)),
    ('spine1', 'pelvis', (0.0, 0.05, -0.01)),
    ('spine2', 'spine1', (0.0, 0.08, -0.005)),
    ('spine3', 'spine2', (0.0, 0.09, 0.0)),
    ('neck', 'spine3', (0.0, 0.07, -0.01)),
    ('head', 'neck', (0.0, 0.06, 0.012)),
    ('headtop', 'head', (0.0, 0.11, 0.0)),
    ('lclavicle', 'spine3', (0.018, 0.04, 0.03)),
    ('lshoulder', 'lclavicle', (0.105, 0.01, -0.03)),
    ('lelbow', 'lshoulder', (0.0, -0.186, 0.0)),
    ('lwrist', 'lelbow', (0.0, -0.146, 0.0)),
    ('lhand', 'lwrist', (0.0, -0.085, 0.0)),
    ('rclavicle', 'spine3', (-0.018, 0.04, 0.03)),
    ('rshoulder', 'rclavicle', (-0.105, 0.01, -0.03)),
    ('relbow', 'rshoulder', (0.0, -0.186, 0.0)),
    ('rwrist', 'relbow', (0.0, -0.146, 0.0)),
    ('rhand', 'rwrist', (0.0, -0.085, 0.0)),
]
JOINT_NAMES: tuple[str, ...] = tuple(n for n, _, _ in _TREE)
JOINT_IDS: dict[str, int] = {n: i for i, n in enumerate(JOINT_NAMES)}
PARENTS: np.ndarray = np.array([-1 if p is None else JOINT_IDS[p] for _, p, _ in _TREE])
REST_OFFSETS: np.ndarray = np.array([o for _, _, o in _TREE], np.float64)  # [J, 3], stature units
BONES: tuple[tuple[str, str], ...] = tuple((p, n) for n, p, _ in _TREE if p is not None)

# Which child defines a joint's bone axis, for landmarks placed at a fraction along the bone.
_PRIMARY_CHILD = {
    'pelvis': 'spine1', 'lhip': 'lknee', 'lknee': 'lankle', 'lankle': 'ltoe',
    'rhip': 'rknee', 'rknee': 'rankle', 'rankle': 'rtoe', 'spine1': 'spine2',
    'spine2': 'spine3', 'spine3': 'neck', 'neck': 'head', 'head': 'headtop',
    'lclavicle': 'lshoulder', 'lshoulder': 'lelbow', 'lelbow': 'lwrist', 'lwrist': 'lhand',
    'rclavicle': 'rshoulder', 'rshoulder': 'relbow', 'relbow': 'rwrist', 'rwrist': 'rhand',
}

# Landmarks: (name, bone joint, fraction along the bone to its primary child, offset in stature
# units in that bone's frame). Left-side ones are mirrored to the right automatically.
_CENTRE_LANDMARKS = [
    ('sacrum', 'pelvis', 0.2, (0.0, 0.0, -0.07)),
    ('pubis', 'pelvis', -0.6, (0.0, 0.0, 0.05)),
    ('belly', 'spine1', 0.5, (0.0, 0.0, 0.075)),
    ('t10', 'spine2', 0.3, (0.0, 0.0, -0.075)),
    ('sternum', 'spine2', 0.6, (0.0, 0.0, 0.085)),
    ('jugular', 'spine3', 0.8, (0.0, 0.0, 0.055)),
    ('t4', 'spine3', 0.4, (0.0, 0.0, -0.075)),
    ('c7', 'neck', 0.0, (0.0, 0.0, -0.045)),
    ('throat', 'neck', 0.5, (0.0, 0.0, 0.035)),
    ('nose', 'head', 0.3, (0.0, 0.0, 0.068)),
    ('chin', 'head', -0.1, (0.0, 0.0, 0.055)),
    ('crown', 'head', 0.85, (0.0, 0.0, -0.02)),
]
_LEFT_LANDMARKS = [
    ('lasis', 'pelvis', 0.4, (0.065, 0.0, 0.055)),
    ('lpsis', 'pelvis', 0.6, (0.025, 0.0, -0.06)),
    ('lwaist', 'spine1', 0.5, (0.08, 0.0, 0.0)),
    ('lrib', 'spine2', 0.5, (0.09, 0.0, 0.03)),
    ('lchest', 'spine3', 0.3, (0.06, 0.0, 0.085)),
    ('lscap', 'spine3', 0.5, (0.06, 0.0, -0.07)),
    ('leye', 'head', 0.45, (0.018, 0.0, 0.052)),
    ('lear', 'head', 0.4, (0.046, 0.0, -0.005)),
    ('lfhead', 'head', 0.75, (0.03, 0.0, 0.05)),
    ('lbhead', 'head', 0.7, (0.03, 0.0, -0.056)),
    ('lacromion', 'lclavicle', 1.0, (0.0, 0.022, 0.0)),
    ('lshofront', 'lshoulder', 0.1, (0.0, 0.0, 0.04)),
    ('lupperarm', 'lshoulder', 0.5, (0.03, 0.0, 0.0)),
    ('lepil', 'lshoulder', 1.0, (0.03, 0.0, 0.0)),
    ('lepim', 'lshoulder', 1.0, (-0.028, 0.0, 0.0)),
    ('lforearm', 'lelbow', 0.5, (0.022, 0.0, 0.0)),
    ('lradial', 'lelbow', 1.0, (0.0, 0.0, 0.022)),
    ('lulnar', 'lelbow', 1.0, (0.0, 0.0, -0.02)),
    ('lfinger', 'lwrist', 0.8, (0.0, 0.0, 0.0)),
    ('lthumb', 'lwrist', 0.4, (0.0, 0.0, 0.03)),
    ('ltroch', 'lhip', 0.05, (0.045, 0.0, 0.0)),
    ('lthigh', 'lhip', 0.55, (0.045, 0.0, 0.01)),
    ('lknlat', 'lhip', 1.0, (0.045, 0.0, 0.0)),
    ('lknmed', 'lhip', 1.0, (-0.04, 0.0, 0.0)),
    ('lpatella', 'lhip', 0.97, (0.0, 0.0, 0.045)),
    ('lshin', 'lknee', 0.5, (0.035, 0.0, 0.01)),
    ('lmallat', 'lknee', 1.0, (0.035, 0.0, 0.0)),
    ('lmalmed', 'lknee', 1.0, (-0.03, 0.0, 0.0)),
    ('lheel', 'lankle', 0.0, (0.0, -0.02, -0.04)),
    ('ltoetip', 'lankle', 1.35, (0.0, 0.0, 0.0)),
    ('lmt5', 'lankle', 0.8, (0.03, 0.0, 0.0)),
]


def _mirror_landmark(item):
    name, joint, frac, (x, y, z) = item
    sided = joint.startswith('l') and 'r' + joint[1:] in JOINT_IDS
    return ('r' + name[1:], 'r' + joint[1:] if sided else joint, frac, (-x, y, z))


_LANDMARKS = _CENTRE_LANDMARKS + _LEFT_LANDMARKS + [_mirror_landmark(i) for i in _LEFT_LANDMARKS]
LANDMARK_NAMES: tuple[str, ...] = tuple(n for n, _, _, _ in _LANDMARKS)
_LANDMARK_JOINT = np.array([JOINT_IDS[j] for _, j, _, _ in _LANDMARKS])
_LANDMARK_CHILD = np.array([JOINT_IDS[_PRIMARY_CHILD[j]] for _, j, _, _ in _LANDMARKS])
_LANDMARK_FRAC = np.array([f for _, _, f, _ in _LANDMARKS], np.float64)
_LANDMARK_OFFSET = np.array([o for _, _, _, o in _LANDMARKS], np.float64)

# All hidden points: joint centres first, then landmarks.
HIDDEN_POINT_NAMES: tuple[str, ...] = JOINT_NAMES + LANDMARK_NAMES
HIDDEN_POINT_IDS: dict[str, int] = {n: i for i, n in enumerate(HIDDEN_POINT_NAMES)}
N_HIDDEN = len(HIDDEN_POINT_NAMES)

# Joint limits in degrees for the local Euler angles (x = flexion, y = twist about the bone,
# z = ab/adduction), R_local = Rz(z) @ Rx(x) @ Ry(y). Given for the left side and the trunk;
# the right side mirrors them (y and z negated).
_LEFT_LIMITS_DEG = {
    'pelvis': ((-10, 20), (-10, 10), (-8, 8)),
    'lhip': ((-120, 25), (-30, 30), (-20, 45)),
    'lknee': ((0, 140), (-5, 5), (-3, 3)),
    'lankle': ((-30, 40), (-10, 10), (-15, 15)),
    'spine1': ((-15, 40), (-20, 20), (-15, 15)),
    'spine2': ((-15, 35), (-20, 20), (-15, 15)),
    'spine3': ((-10, 30), (-15, 15), (-10, 10)),
    'neck': ((-30, 40), (-40, 40), (-20, 20)),
    'head': ((-25, 30), (-40, 40), (-15, 15)),
    'lclavicle': ((-10, 10), (-15, 15), (-10, 25)),
    'lshoulder': ((-170, 50), (-60, 60), (-10, 170)),
    'lelbow': ((-145, 0), (-80, 80), (-3, 3)),
    'lwrist': ((-70, 70), (-10, 10), (-20, 30)),
}


def _limits_table() -> np.ndarray:
    table = np.zeros((len(JOINT_NAMES), 3, 2))
    for name, limits in _LEFT_LIMITS_DEG.items():
        table[JOINT_IDS[name]] = limits
        if name.startswith('l'):
            (x0, x1), (y0, y1), (z0, z1) = limits
            table[JOINT_IDS['r' + name[1:]]] = ((x0, x1), (-y1, -y0), (-z1, -z0))
    return table


JOINT_LIMITS_DEG: np.ndarray = _limits_table()  # [J, 3 angles, (low, high)]; zero = locked


def euler_to_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """[..., 3] local Euler angles (x, y, z) in degrees -> [..., 3, 3] Rz(z) @ Rx(x) @ Ry(y)."""
    a = np.deg2rad(np.asarray(angles_deg, np.float64))
    cx, cy, cz = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sx, sy, sz = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    zeros, ones = np.zeros_like(cx), np.ones_like(cx)
    rx = np.stack([ones, zeros, zeros, zeros, cx, -sx, zeros, sx, cx], -1)
    ry = np.stack([cy, zeros, sy, zeros, ones, zeros, -sy, zeros, cy], -1)
    rz = np.stack([cz, -sz, zeros, sz, cz, zeros, zeros, zeros, ones], -1)
    shape = a.shape[:-1] + (3, 3)
    return rz.reshape(shape) @ rx.reshape(shape) @ ry.reshape(shape)


@dataclasses.dataclass(frozen=True)
class BodyShape:
    """One person's proportions.

    Attributes:
        stature_mm: standing height (head top above the lowest foot point in the rest pose), mm.
        offsets_mm: [J, 3] rest offset of each joint from its parent, in the parent's bone frame,
            mm (row 0 is unused; the pelvis is placed by the root translation).
        landmark_scale_mm: [L] scale of each landmark's perpendicular offset (stature times the
            body's girth factor), mm.
        girth: relative body girth (1 = average), also used for the rendered capsule radii.
    """
    stature_mm: float
    offsets_mm: np.ndarray
    landmark_scale_mm: np.ndarray
    girth: float


def sample_body(rng: np.random.Generator, stature_range_mm=(1500.0, 2000.0)) -> BodyShape:
    """Random proportions: per-segment length factors (left/right symmetric), width and girth
    factors, rescaled so that the rest-pose stature equals a uniform draw from the range."""
    stature = rng.uniform(*stature_range_mm)
    length_factor = np.clip(rng.normal(1.0, 0.05, len(JOINT_NAMES)), 0.88, 1.12)
    # Left and right segments share one length: people are (nearly) symmetric.
    for i, name in enumerate(JOINT_NAMES):
        if name.startswith('r') and 'l' + name[1:] in JOINT_IDS:
            length_factor[i] = length_factor[JOINT_IDS['l' + name[1:]]]
    width = rng.uniform(0.9, 1.15)
    girth = rng.uniform(0.85, 1.2)
    offsets = REST_OFFSETS * length_factor[:, None]
    lateral = np.array([JOINT_IDS[n] for n in ('lhip', 'rhip', 'lshoulder', 'rshoulder')])
    offsets[lateral, 0] *= width
    unit = BodyShape(1.0, offsets, np.full(len(LANDMARK_NAMES), girth), girth)
    rest = forward_kinematics(unit, np.zeros((1, len(JOINT_NAMES), 3)),
                              yaw_to_root_rotation(np.zeros(1)), np.zeros((1, 3)))[0]
    height = rest[:, 2].max() - rest[:, 2].min()
    scale = stature / height
    return BodyShape(float(stature), offsets * scale,
                     np.full(len(LANDMARK_NAMES), girth * scale), float(girth))


def forward_kinematics(body: BodyShape, pose_deg: np.ndarray, root_rot: np.ndarray,
                       root_pos: np.ndarray) -> np.ndarray:
    """Hidden points in world coordinates.

    Args:
        body: proportions.
        pose_deg: [T, J, 3] local Euler angles in degrees (see `euler_to_matrix`).
        root_rot: [T, 3, 3] body frame -> world rotation of the pelvis before its local rotation.
        root_pos: [T, 3] world position of the pelvis joint, mm.
    Returns:
        [T, N_HIDDEN, 3] world mm: joint centres (JOINT_NAMES order), then landmarks.
    """
    local = euler_to_matrix(pose_deg)  # [T, J, 3, 3]
    n_frames = local.shape[0]
    glob = np.empty_like(local)
    pos = np.empty((n_frames, len(JOINT_NAMES), 3))
    glob[:, 0] = root_rot @ local[:, 0]
    pos[:, 0] = root_pos
    # The tree is tiny (25 joints) and topologically ordered; the loop is over joints, but each
    # step is vectorised over all frames.
    for j in range(1, len(JOINT_NAMES)):
        p = PARENTS[j]
        pos[:, j] = pos[:, p] + glob[:, p] @ body.offsets_mm[j]
        glob[:, j] = glob[:, p] @ local[:, j]
    bone_vec = pos[:, _LANDMARK_CHILD] - pos[:, _LANDMARK_JOINT]  # [T, L, 3]
    perp = np.einsum('tlij,lj->tli', glob[:, _LANDMARK_JOINT],
                     _LANDMARK_OFFSET * body.landmark_scale_mm[:, None])
    landmarks = pos[:, _LANDMARK_JOINT] + _LANDMARK_FRAC[:, None] * bone_vec + perp
    return np.concatenate([pos, landmarks], axis=1)


def yaw_to_root_rotation(yaw_rad: np.ndarray) -> np.ndarray:
    """[T] heading angles -> [T, 3, 3] body->world rotations (body up = world +z, body forward
    = (cos yaw, sin yaw, 0))."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    zeros, ones = np.zeros_like(c), np.ones_like(c)
    # Columns are the body's left, up and forward axes in world coordinates.
    return np.stack([np.stack([-s, zeros, c], -1),
                     np.stack([c, zeros, s], -1),
                     np.stack([zeros, ones, zeros], -1)], axis=-2)
