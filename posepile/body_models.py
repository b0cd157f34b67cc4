"""SMPL / SMPL+H / SMPL-X forward pass in numpy, vectorised over frames, from official npz files.

The body-model files are licence-restricted: the user downloads them and passes a directory
(`--body-model-dir`) laid out as

    <dir>/smpl/SMPL_{NEUTRAL,MALE,FEMALE}.npz
    <dir>/smplh/SMPLH_{NEUTRAL,MALE,FEMALE}.npz
    <dir>/smplx/SMPLX_{NEUTRAL,MALE,FEMALE}.npz

Keys read from each npz (the official layout; V vertices, K joints):
    v_template     [V, 3]       template mesh, metres (model frame)
    shapedirs      [V, 3, S]    shape blend shapes; for SMPL-X, columns >= the shape-space size
                                are the expression blend shapes (see `_split_shape_expression`)
    posedirs       [V, 3, 9(K-1)] pose-corrective blend shapes, driven by (R_k - I) of joints 1..K-1
    J_regressor    [K, V]       rest joints from the shaped mesh
    weights        [V, K]       skinning weights
    kintree_table  [2, K]       row 0: parent of each joint (root: -1 or 2**32-1)
    f              [F, 3]       faces (not needed for joints; kept for completeness)
Optional for SMPL+H/SMPL-X: hands_componentsl/r [C, 45], hands_meanl/r [45] (hand pose PCA).
SMPL: 6890 vertices, 24 joints; SMPL+H: 6890, 52; SMPL-X: 10475, 55. Other keys (e.g. SMPL-X's
landmark arrays, which may be object arrays) are never loaded, so no npz key needs pickles.
SMPL-X ships as npz (SMPLX_{GENDER}.npz, copy as is); the SMPL+H download (MANO site, "extended
SMPL+H") ships <gender>/model.npz: copy it to smplh/SMPLH_<GENDER>.npz.

SMPL ships only as .pkl whose arrays are chumpy objects and whose J_regressor is a scipy sparse
matrix; `posepile.safe_unpickle` refuses both (by design: unpickling them would import and run
third-party classes). Convert each SMPL .pkl to npz once with your own trusted tooling (load it
with chumpy installed, `np.asarray` every array, `.toarray()` the sparse J_regressor, and
`np.savez` the keys above); this module never reads a pickle.

All maths is in the model's units (metres) and frame; converters scale to millimetres.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import zipfile

import numpy as np

from posepile.datasets.common import DatasetFormatError, get_field, require_file

# name -> (vertex count, joint count) of the official models.
MODEL_SIZES = {'smpl': (6890, 24), 'smplh': (6890, 52), 'smplx': (10475, 55)}
_BODY_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)


def _hand_parents(wrist: int, first: int) -> tuple[int, ...]:
    """Five 3-joint finger chains hanging off the wrist, numbered from `first`."""
    return tuple(p for finger in range(5)
                 for p in (wrist, first + 3 * finger, first + 3 * finger + 1))


# The official kinematic trees (kintree_table row 0), for tests and for checking files.
OFFICIAL_PARENTS = {
    'smpl': _BODY_PARENTS + (20, 21),
    'smplh': _BODY_PARENTS + _hand_parents(20, 22) + _hand_parents(21, 37),
    'smplx': _BODY_PARENTS + (15, 15, 15) + _hand_parents(20, 25) + _hand_parents(21, 40),
}
GENDERS = ('neutral', 'male', 'female')
# SMPL-X files put the expression directions after a shape space of this size (300 in the v1.1
# files with 400 columns; the original files have 10 shape + 10 expression columns).
_SMPLX_SHAPE_SPACE = 300
_SMPLX_OLD_SHAPE_SPACE = 10


@dataclasses.dataclass(frozen=True)
class BodyModel:
    """One gendered body model; arrays in metres (model frame), as in the npz.

    Attributes:
        kind: 'smpl', 'smplh' or 'smplx'.
        v_template: [V, 3]. shapedirs: [V, 3, S]. exprdirs: [V, 3, E] (E = 0 unless SMPL-X).
        posedirs: [V, 3, 9(K-1)]. J_regressor: [K, V]. weights: [V, K].
        parents: [K] int, -1 for the root; every parent index is smaller than its child's.
        faces: [F, 3] int.
        hand_components: {'left'|'right': ([C, 45] components, [45] mean)}; empty if absent.
        source: the file it came from.
    """
    kind: str
    v_template: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray
    hand_components: dict = dataclasses.field(default_factory=dict)
    source: str = ''

    @property
    def n_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def n_joints(self) -> int:
        return self.parents.shape[0]

    @functools.cached_property
    def depth_levels(self) -> list[np.ndarray]:
        """Joint indices grouped by tree depth (root first), so the kinematic chain runs as a
        few batched matrix products per level instead of one per joint."""
        depth = np.zeros(self.n_joints, np.int64)
        for k in range(1, self.n_joints):  # one-time setup over the tree, not a hot path
            depth[k] = depth[self.parents[k]] + 1
        return [np.flatnonzero(depth == d) for d in range(depth.max() + 1)]


@dataclasses.dataclass
class BodyModelOutput:
    """vertices: [T, V, 3], joints: [T, K, 3] (posed kinematic joints), both metres, model
    world frame (after `trans`)."""
    vertices: np.ndarray | None
    joints: np.ndarray


def _split_shape_expression(kind: str, shapedirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if kind != 'smplx':
        return shapedirs, shapedirs[:, :, :0]
    n_shape = (_SMPLX_SHAPE_SPACE if shapedirs.shape[2] > _SMPLX_SHAPE_SPACE
               else _SMPLX_OLD_SHAPE_SPACE)
    return shapedirs[:, :, :n_shape], shapedirs[:, :, n_shape:]


def load_body_model(path: str | os.PathLike, kind: str) -> BodyModel:
    """Reads an official-layout npz (see module doc) for model `kind` ('smpl'/'smplh'/'smplx').

    Raises DatasetFormatError naming the file and the field on a missing key or a wrong shape
    (vertex and joint counts must be the official ones for `kind`).
    """
    if kind not in MODEL_SIZES:
        raise ValueError(f'unknown body model kind {kind!r}; expected one of {list(MODEL_SIZES)}')
    path = require_file(path, f'a {kind.upper()} model .npz (official layout)')
    if path.suffix == '.pkl':
        raise DatasetFormatError(
            f'{path}: body-model pickles are not read (chumpy objects); convert to .npz once '
            f'with your own trusted tooling (see posepile/body_models.py)')
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise DatasetFormatError(f'{path}: not a readable npz without pickles ({e})') from None
    n_joints = MODEL_SIZES[kind][1]
    with data:
        kintree = get_field(data, 'kintree_table', path, (2, n_joints), dtype=np.int64)
        # The vertex count is not pinned to the official one, so tests can use tiny models.
        v_template = get_field(data, 'v_template', path, (None, 3))
        n_verts = v_template.shape[0]
        shapedirs = get_field(data, 'shapedirs', path, (n_verts, 3, None))
        posedirs = get_field(data, 'posedirs', path, (n_verts, 3, 9 * (n_joints - 1)))
        regressor = get_field(data, 'J_regressor', path, (n_joints, n_verts))
        weights = get_field(data, 'weights', path, (n_verts, n_joints))
        faces = get_field(data, 'f', path, (None, 3), dtype=np.int64)
        hands = {}
        for side, suffix in (('left', 'l'), ('right', 'r')):
            if f'hands_components{suffix}' in data.files:
                hands[side] = (get_field(data, f'hands_components{suffix}', path, (None, 45)),
                               get_field(data, f'hands_mean{suffix}', path, (45,)))
    parents = kintree[0].copy()
    parents[0] = -1  # the root's parent is stored as -1 or as uint32 max
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, n_joints)):
        raise DatasetFormatError(
            f"{path}: field 'kintree_table' must list each joint's parent before the joint")
    shapedirs, exprdirs = _split_shape_expression(kind, shapedirs)
    return BodyModel(kind=kind, v_template=v_template, shapedirs=shapedirs, exprdirs=exprdirs,
                     posedirs=posedirs, J_regressor=regressor, weights=weights, parents=parents,
                     faces=faces, hand_components=hands, source=str(path))


def body_model_path(body_model_dir: str | os.PathLike, kind: str, gender: str) -> pathlib.Path:
    """<dir>/<kind>/<KIND>_<GENDER>.npz, the `--body-model-dir` convention."""
    gender = gender.lower()
    if gender not in GENDERS:
        raise ValueError(f'gender must be one of {GENDERS}, got {gender!r}')
    if kind not in MODEL_SIZES:
        raise ValueError(f'unknown body model kind {kind!r}; expected one of {list(MODEL_SIZES)}')
    return pathlib.Path(body_model_dir) / kind / f'{kind.upper()}_{gender.upper()}.npz'


ENV_VAR = 'POSEPILE_BODY_MODEL_DIR'


def resolve_body_model_dir(body_model_dir: str | os.PathLike | None, needed_by: str) -> str:
    """The `--body-model-dir` value, else the POSEPILE_BODY_MODEL_DIR environment variable
    (for CLIs that do not pass the option through yet); an error naming `needed_by` if neither."""
    value = body_model_dir if body_model_dir is not None else os.environ.get(ENV_VAR)
    if not value:
        raise ValueError(f'{needed_by} needs the licensed body models: pass --body-model-dir '
                         f'(or set {ENV_VAR}); layout: see posepile/body_models.py')
    return str(value)


@functools.lru_cache(maxsize=8)
def get_body_model(body_model_dir: str, kind: str, gender: str) -> BodyModel:
    """Cached `load_body_model(body_model_path(...))`."""
    return load_body_model(body_model_path(body_model_dir, kind, gender), kind)


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle [..., 3] (radians) -> rotation matrices [..., 3, 3] (Rodrigues' formula)."""
    rotvec = np.asarray(rotvec, np.float64)
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)[..., None]  # [..., 1, 1]
    axis = rotvec / np.maximum(angle[..., 0], 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(
        rotvec.shape[:-1] + (3, 3))
    outer = axis[..., :, None] * axis[..., None, :]
    eye = np.eye(3)
    return np.cos(angle) * eye + np.sin(angle) * cross + (1 - np.cos(angle)) * outer


def hand_pca_to_pose(model: BodyModel, side: str, coeffs: np.ndarray,
                     add_mean: bool = True) -> np.ndarray:
    """Hand PCA coefficients [T, C'] (C' <= C) -> axis-angle of 15 hand joints [T, 15, 3]."""
    if side not in model.hand_components:
        raise KeyError(f'{model.source}: no hands_components for the {side} hand')
    components, mean = model.hand_components[side]
    coeffs = np.asarray(coeffs, np.float64)
    pose = coeffs @ components[:coeffs.shape[-1]]
    if add_mean:
        pose = pose + mean
    return pose.reshape(coeffs.shape[:-1] + (15, 3))


def _per_frame(values, n_frames: int, width: int, name: str) -> np.ndarray:
    """[width] or [T, width'] (width' <= width, zero-padded) -> [T, width] float64."""
    arr = np.zeros((n_frames, width)) if values is None else np.asarray(values, np.float64)
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (n_frames, arr.shape[0]))
    if arr.ndim != 2 or arr.shape[0] != n_frames or arr.shape[1] > width:
        raise ValueError(f'{name} must be [{width}] or [{n_frames}, <={width}], got {arr.shape}')
    return np.pad(arr, ((0, 0), (0, width - arr.shape[1])))


def forward(model: BodyModel, pose: np.ndarray, betas=None, trans=None, expression=None,
            return_vertices: bool = True) -> BodyModelOutput:
    """The body model's forward pass for T frames.

    Args:
        pose: [T, K, 3] or [T, 3K] axis-angle (radians) of all K joints, parent-relative, in the
            model's joint order (joint 0 = global orientation).
        betas: [S'] or [T, S'] shape coefficients (S' <= S; missing ones are zero).
        trans: [T, 3] or [3] translation (metres), added after the kinematic chain.
        expression: SMPL-X only, [E'] or [T, E'] expression coefficients.
        return_vertices: False skips skinning when only the kinematic joints are needed.
    Returns:
        BodyModelOutput, metres, model world frame.
    """
    pose = np.asarray(pose, np.float64)
    n_frames, n_joints = pose.shape[0], model.n_joints
    pose = pose.reshape(n_frames, -1)
    if pose.shape[1] != 3 * n_joints:
        raise ValueError(f'pose must be [T, {n_joints}, 3] for {model.kind}, got {pose.shape}')
    rots = rotvec_to_matrix(pose.reshape(n_frames, n_joints, 3))  # [T, K, 3, 3]

    betas = _per_frame(betas, n_frames, model.shapedirs.shape[2], 'betas')
    v_shaped = model.v_template + np.einsum('vcs,ts->tvc', model.shapedirs, betas)
    if model.exprdirs.shape[2] or expression is not None:
        expression = _per_frame(expression, n_frames, model.exprdirs.shape[2], 'expression')
        v_shaped = v_shaped + np.einsum('vce,te->tvc', model.exprdirs, expression)
    rest_joints = np.einsum('kv,tvc->tkc', model.J_regressor, v_shaped)  # [T, K, 3]

    # Local rigid transforms: rotation about the joint, offset from the parent in rest pose.
    offsets = rest_joints.copy()
    offsets[:, 1:] -= rest_joints[:, model.parents[1:]]
    local = np.zeros((n_frames, n_joints, 4, 4))
    local[..., :3, :3] = rots
    local[..., :3, 3] = offsets
    local[..., 3, 3] = 1.0
    world = np.empty_like(local)
    levels = model.depth_levels
    world[:, levels[0]] = local[:, levels[0]]
    for level in levels[1:]:
        world[:, level] = world[:, model.parents[level]] @ local[:, level]

    trans = _per_frame(trans, n_frames, 3, 'trans')
    joints = world[..., :3, 3] + trans[:, None]
    if not return_vertices:
        return BodyModelOutput(vertices=None, joints=joints)

    pose_feature = (rots[:, 1:] - np.eye(3)).reshape(n_frames, -1)  # zero at rest
    v_posed = v_shaped + np.einsum('vcp,tp->tvc', model.posedirs, pose_feature)
    # Skinning transforms map rest-pose points (not joint-relative ones): subtract G·J_rest.
    skin = world.copy()
    skin[..., :3, 3] -= np.einsum('tkab,tkb->tka', world[..., :3, :3], rest_joints)
    blended = np.einsum('vk,tkab->tvab', model.weights, skin[..., :3, :])  # [T, V, 3, 4]
    vertices = (np.einsum('tvab,tvb->tva', blended[..., :3], v_posed) + blended[..., 3]
                + trans[:, None])
    return BodyModelOutput(vertices=vertices, joints=joints)


def regress_joints(vertices: np.ndarray, regressor: np.ndarray) -> np.ndarray:
    """Joints [T, J, 3] from vertices [T, V, 3] through a regressor matrix [J, V] (e.g. a
    dataset's COCO-like joint regressor, passed in as a file by the user)."""
    regressor = np.asarray(regressor, np.float64)
    if regressor.ndim != 2 or regressor.shape[1] != vertices.shape[-2]:
        raise ValueError(f'regressor must be [J, {vertices.shape[-2]}], got {regressor.shape}')
    return np.einsum('jv,tvc->tjc', regressor, vertices)
