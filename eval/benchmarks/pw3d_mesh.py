"""3DPW ground truth from the SMPL parameters: mesh-regressed Human3.6M joints (the SPIN-style
14-joint protocol) and SMPL's own kinematic joints (the official evaluate.py's ground truth).

Needs the user's licensed files, never part of the benchmark:
    body models   <body_model_dir>/smpl/SMPL_{MALE,FEMALE}.npz (posepile/body_models.py layout)
    regressor     J_regressor_h36m.npy, [17, 6890] float (as distributed with SPIN / VIBE): row i
                  gives H36M joint i (order of skeleton 'h36m_17') as a weighted vertex sum.
Inputs per 3DPW actor: 'poses' [F, 72] axis-angle, 'betas' [>= 10] (the first 10 are used, as
SPIN and the official script do), 'trans' [F, 3] metres, 'genders' 'm' / 'f'; all world frame.

SPIN (nkolot/SPIN eval.py, 3DPW) regresses the 17 H36M joints from the gendered GT mesh, roots
them at the regressed pelvis (row 0) and keeps H36M_TO_J14. Only vertices the regressor uses are
skinned (`regressor_submodel`), which gives the same joints exactly at a fraction of the cost.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib

import numpy as np

from posepile import body_models
from posepile.datasets.common import DatasetFormatError, require_file

# SPIN constants.H36M_TO_J14: rank rkne rhip lhip lkne lank rwri relb rsho lsho lelb lwri,
# thorax ('neck' of h36m_17) and head ('htop' of h36m_17) among the 17 regressed joints.
H36M_TO_J14 = np.array([6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10])
H36M_PELVIS = 0
N_H36M_JOINTS = 17
GENDERS = {'m': 'male', 'f': 'female'}
CHUNK_FRAMES = 512  # frames per forward pass: bounds the [T, V, 3, 4] skinning array


def load_regressor(path: str | pathlib.Path) -> np.ndarray:
    """[17, V] float64 from a .npy (no pickles); errors name the file. V is checked against the
    body model when it is used (`MeshFiles`)."""
    path = require_file(path, 'the H36M joint regressor J_regressor_h36m.npy [17, 6890]')
    try:
        regressor = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DatasetFormatError(f'{path}: not a readable .npy array ({e})') from None
    if regressor.ndim != 2 or regressor.shape[0] != N_H36M_JOINTS \
            or not np.issubdtype(regressor.dtype, np.number):
        raise DatasetFormatError(f'{path}: the regressor must be a numeric [{N_H36M_JOINTS}, '
                                 f'6890] array (H36M joints x SMPL vertices), got '
                                 f'{regressor.dtype} {regressor.shape}')
    return np.asarray(regressor, np.float64)


def regressor_submodel(model: body_models.BodyModel, regressor: np.ndarray
                       ) -> tuple[body_models.BodyModel, np.ndarray]:
    """(a smaller BodyModel, its regressor [R, S]) giving the same regressed joints.

    The smaller model's vertices are the S vertices the regressor weights (its support) plus K
    stand-ins for the rest joints: their template and shape directions are J_regressor times the
    full ones, so the rest joints (J_regressor of the shaped mesh, linear in the betas) come out
    exactly, and its J_regressor picks them. The stand-ins carry no pose correctives; their
    skinning is never read. Forward-passing it returns the support vertices first.
    """
    support = np.flatnonzero(np.any(regressor != 0, axis=0))
    k = model.n_joints
    joint_reg = model.J_regressor
    stack = lambda sub, full: np.concatenate([sub[support], full], axis=0)  # noqa: E731
    small = dataclasses.replace(
        model,
        v_template=stack(model.v_template, joint_reg @ model.v_template),
        shapedirs=stack(model.shapedirs, np.einsum('kv,vcs->kcs', joint_reg, model.shapedirs)),
        exprdirs=stack(model.exprdirs, np.einsum('kv,vce->kce', joint_reg, model.exprdirs)),
        posedirs=stack(model.posedirs, np.zeros((k,) + model.posedirs.shape[1:])),
        J_regressor=np.concatenate([np.zeros((k, len(support))), np.eye(k)], axis=1),
        weights=stack(model.weights, np.eye(k)),
        faces=np.zeros((0, 3), np.int64), source=f'{model.source} (regressor support)')
    return small, regressor[:, support]


@dataclasses.dataclass(frozen=True)
class MeshFiles:
    """Where the licensed files are: body_model_dir (posepile.body_models layout) and the H36M
    regressor (.npy); regressor None = only SMPL's kinematic joints can be computed."""
    body_model_dir: str
    h36m_regressor: str | None = None

    @functools.cached_property
    def regressor(self) -> np.ndarray:
        return load_regressor(self.h36m_regressor)

    def model(self, gender: str, path: str) -> body_models.BodyModel:
        if gender not in GENDERS:
            raise DatasetFormatError(f"{path}: field 'genders' has {gender!r}, expected 'm' or "
                                     f"'f'")
        return body_models.get_body_model(self.body_model_dir, 'smpl', GENDERS[gender])

    @functools.lru_cache(maxsize=2)
    def _submodel(self, gender: str) -> tuple[body_models.BodyModel, np.ndarray]:
        model = self.model(gender, '')
        if self.regressor.shape[1] != model.n_vertices:
            raise DatasetFormatError(
                f'{self.h36m_regressor}: the regressor has {self.regressor.shape[1]} vertex '
                f'columns, {model.source} {model.n_vertices} vertices')
        return regressor_submodel(model, self.regressor)

    def regressed_h36m(self, gender: str, pose: np.ndarray, betas: np.ndarray,
                       trans: np.ndarray, path: str = '') -> np.ndarray:
        """[T, 17, 3] metres, world frame: J_regressor_h36m applied to the gendered mesh of
        pose [T, 72], betas [10], trans [T, 3]."""
        self.model(gender, path)  # validates the gender with the file's name in the error
        small, regressor = self._submodel(gender)
        n_support = regressor.shape[1]
        parts = [body_models.regress_joints(
                    body_models.forward(small, pose[i:i + CHUNK_FRAMES], betas,
                                        trans[i:i + CHUNK_FRAMES]).vertices[:, :n_support],
                    regressor)
                 for i in range(0, len(pose), CHUNK_FRAMES)]
        return np.concatenate(parts) if parts else np.zeros((0, N_H36M_JOINTS, 3))

    def smpl_joints(self, gender: str, pose: np.ndarray, betas: np.ndarray, trans: np.ndarray,
                    path: str = '') -> np.ndarray:
        """[T, 24, 3] metres, world frame: SMPL's kinematic joints (what 3DPW's official
        evaluate.py takes as ground truth)."""
        model = self.model(gender, path)
        return body_models.forward(model, pose, betas, trans, return_vertices=False).joints
