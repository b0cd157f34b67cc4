"""2D-only labels and the 3D joints they supervise: base-name groups.

A 2D-only dataset (COCO, MPII, the synthetic world's 'synwild') labels image points by its own
convention: 'lsho' in COCO is neither H36M's shoulder nor SMPL's. The released MeTRAbs code
(`get_2dlike_joints`, metrabs_tf/models/metrabs.py) compares such a label with the mean of the
projections of ALL model joints of that name ('lsho' -> mean of lsho_h36m, lsho (SMPL),
lsho_coco, ...), so in-the-wild 2D data weakly supervises the 3D predictions of every skeleton,
and the 2D-only formats' own joints are no model outputs (nothing would supervise them in 3D).

Names: a union name is '<base>_<tag>' ('<base>' for the untagged SMPL joints); the 2D label
names are the base names of the union's 2D formats (posepile.joints, SkeletonFormat.is_2d),
in registry order. The released code matches by prefix (`startswith`); here the base name must
match exactly, so that e.g. 'lank' never takes in a 'lankle...' joint of some other format.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posepile import joints
from posepile.joints.joint_info import mirror_name


def base_name(union_name: str) -> str:
    """'lsho_h36m' -> 'lsho'; 'lsho' (SMPL) -> 'lsho'."""
    return joints.split_union_name(union_name)[0]


def label_names_2d(union: str, joint_names: Sequence[str]) -> tuple[str, ...]:
    """Base names of the union's 2D-format joints that name at least one of `joint_names`."""
    present = {base_name(n) for n in joint_names}
    names = []
    for skeleton in joints.skeleton_names(union):
        if joints.get_format(skeleton).is_2d:
            names += [base_name(n) for n in joints.union_names(skeleton)]
    return tuple(n for n in dict.fromkeys(names) if n in present)


def group_matrix(joint_names: Sequence[str], names_2d: Sequence[str]) -> np.ndarray:
    """[K, J] float32: row k averages the model joints whose base name is names_2d[k].

    Raises ValueError naming a label name that no joint has (it would supervise nothing).
    """
    bases = np.array([base_name(n) for n in joint_names])
    matrix = (bases[np.newaxis, :] == np.asarray(names_2d, dtype=object)[:, np.newaxis]
              ).astype(np.float64)
    counts = matrix.sum(axis=1)
    if np.any(counts == 0):
        missing = [n for n, c in zip(names_2d, counts) if c == 0]
        raise ValueError(f'2D label names {missing} match no model joint by base name')
    return (matrix / counts[:, np.newaxis]).astype(np.float32)


def record_label_indices(union_names: Sequence[str], names_2d: Sequence[str],
                         union: str) -> np.ndarray:
    """[K, M] int64 union indices of the 2D-format joints with base name names_2d[k], padded
    with -1 (M: the most 2D formats sharing a base name). A 2D-only record labels one format,
    so at most one of a row's joints carries a value."""
    ids = {n: i for i, n in enumerate(union_names)}
    rows: list[list[int]] = [[] for _ in names_2d]
    slot = {n: k for k, n in enumerate(names_2d)}
    for skeleton in joints.skeleton_names(union):
        if not joints.get_format(skeleton).is_2d:
            continue
        for name in joints.union_names(skeleton):
            k = slot.get(base_name(name))
            if k is not None and ids[name] not in rows[k]:
                rows[k].append(ids[name])
    width = max([len(r) for r in rows] + [1])
    return np.array([r + [-1] * (width - len(r)) for r in rows], np.int64).reshape(-1, width)


def gather_labels(coords2d_union: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """[U, 2] a record's 2D labels (NaN where unlabelled), [K, M] from record_label_indices ->
    [K, 2], NaN where the record labels none of a row's joints."""
    padded = np.concatenate([coords2d_union, np.full((1, 2), np.nan)], axis=0)
    candidates = padded[indices]  # -1 picks the NaN row
    finite = np.all(np.isfinite(candidates), axis=-1)
    first = np.argmax(finite, axis=1)
    picked = candidates[np.arange(len(indices)), first]
    return np.where(finite.any(axis=1)[:, np.newaxis], picked, np.nan)


def mirror_perm(names_2d: Sequence[str]) -> np.ndarray:
    """[K] left/right swap of the 2D label names ('lsho' <-> 'rsho'; centre names stay)."""
    ids = {n: i for i, n in enumerate(names_2d)}
    return np.array([ids.get(mirror_name(n), i) for i, n in enumerate(names_2d)], np.int64)
