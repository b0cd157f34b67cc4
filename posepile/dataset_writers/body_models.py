"""Tiny body models (SMPL, SMPL+H, SMPL-X) in the official npz layout, with random content in
metres: few vertices but the real joint counts and kinematic trees (posepile.body_models)."""
from __future__ import annotations

import numpy as np

from posepile import body_models

N_VERTS = 40


def model_arrays(kind, seed=0, n_shape=10, n_expr=0, one_hot_joints=False):
    """Arrays of an official-layout npz with random content (metres)."""
    rng = np.random.default_rng(seed)
    n_joints = body_models.MODEL_SIZES[kind][1]
    parents = np.array(body_models.OFFICIAL_PARENTS[kind])
    kintree = np.stack([parents, np.arange(n_joints)]).astype(np.uint32)  # root -> 2**32-1
    v_template = rng.normal(0, 0.3, (N_VERTS, 3))
    if one_hot_joints:  # joint k is vertex k: joint positions are set by hand
        regressor = np.eye(n_joints, N_VERTS)
    else:
        regressor = rng.uniform(0, 1, (n_joints, N_VERTS))
        regressor /= regressor.sum(1, keepdims=True)
    weights = rng.uniform(0, 1, (N_VERTS, n_joints)) ** 4
    weights /= weights.sum(1, keepdims=True)
    arrays = dict(
        v_template=v_template, shapedirs=rng.normal(0, 0.01, (N_VERTS, 3, n_shape + n_expr)),
        posedirs=rng.normal(0, 0.01, (N_VERTS, 3, 9 * (n_joints - 1))), J_regressor=regressor,
        weights=weights, kintree_table=kintree,
        f=rng.integers(0, N_VERTS, (7, 3)).astype(np.uint32))
    if kind != 'smpl':
        for side in 'lr':
            arrays[f'hands_components{side}'] = rng.normal(0, 0.1, (45, 45))
            arrays[f'hands_mean{side}'] = rng.normal(0, 0.1, 45)
    return arrays


def write_model(directory, kind, gender='neutral', **kwargs):
    path = body_models.body_model_path(directory, kind, gender)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **model_arrays(kind, **kwargs))
    return path
