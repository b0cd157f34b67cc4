"""Small readers of a loaded pose SavedModel's attributes (also work on a PoseEstimatorModule)."""
from __future__ import annotations

import numpy as np


def skeleton_joints(model, skeleton: str) -> tuple[list[str], np.ndarray]:
    """(joint names [J], bones [E, 2] int) of `skeleton` ('' = all model joints); an unknown name
    fails naming the ones the model has."""
    if skeleton == '':
        names, edges = model.joint_names, model.joint_edges
    elif skeleton in model.per_skeleton_joint_names:
        names = model.per_skeleton_joint_names[skeleton]
        edges = model.per_skeleton_joint_edges[skeleton]
    else:
        raise KeyError(f'unknown skeleton {skeleton!r}; the model has: '
                       f'{sorted(model.per_skeleton_joint_names)}')
    decoded = [n.decode() if isinstance(n, bytes) else str(n) for n in names.numpy()]
    return decoded, np.asarray(edges.numpy(), np.int64).reshape(-1, 2)
