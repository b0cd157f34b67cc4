"""A frozen ACAE's weights matched, by joint name, to the output joints of a model.

The one place where ACAE joints meet model joints: the consistency fine-tunings
(metrabs.training.consistency), the latent models (metrabs.model.latent_model) and the exported
ACAE skeletons (metrabs.serving.inference_module) all start from an AcaeMatrices.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from acae import export as acae_export


@dataclasses.dataclass(frozen=True)
class AcaeMatrices:
    """A frozen ACAE expressed over a model's joints.

    Attributes:
        joint_indices: [J_a] int64, positions in the model's joint list of the ACAE's joints
            (in the order of the rows of w_dec / columns of w_enc).
        w_enc: [L, J_a] float32, rows sum to 1.
        w_dec: [J_a, L] float32, rows sum to 1.
        latent_names: the L latent names.
        source: where the weights came from (for error messages).
    """
    joint_indices: np.ndarray
    w_enc: np.ndarray
    w_dec: np.ndarray
    latent_names: tuple[str, ...]
    source: str = '<arrays>'

    @property
    def n_latents(self) -> int:
        return len(self.latent_names)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], model_joint_names: Sequence[str],
                    source: str = '<arrays>', require_all: bool = False) -> AcaeMatrices:
        """Maps the ACAE's joints onto the model's joints by name.

        Args:
            arrays: 'W_enc', 'W_dec', 'joint_names', 'latent_names' (acae.export.load_weights).
            model_joint_names: the model's output joints.
            require_all: every model joint must be an ACAE joint (needed when all outputs are
                decoded from latents).
        Raises:
            KeyError naming `source` when the ACAE has joints the model lacks (or, with
            require_all, the model has joints the ACAE lacks).
        """
        acae_names = [str(n) for n in arrays['joint_names']]
        ids = {n: i for i, n in enumerate(model_joint_names)}
        missing = [n for n in acae_names if n not in ids]
        if missing:
            raise KeyError(f'{source}: joint_names has {len(missing)} joints the model does not '
                           f'predict, e.g. {missing[:5]}')
        if require_all:
            extra = sorted(set(model_joint_names) - set(acae_names))
            if extra:
                raise KeyError(f'{source}: the model predicts {len(extra)} joints the ACAE does '
                               f'not know, e.g. {extra[:5]}; decoding all outputs from latents '
                               f'needs an ACAE over exactly the model joints')
        return cls(np.array([ids[n] for n in acae_names], np.int64),
                   np.asarray(arrays['W_enc'], np.float32), np.asarray(arrays['W_dec'], np.float32),
                   tuple(str(n) for n in arrays['latent_names']), source)

    @classmethod
    def load(cls, path: str, model_joint_names: Sequence[str], require_all: bool = False
             ) -> AcaeMatrices:
        return cls.from_arrays(acae_export.load_weights(path), model_joint_names, str(path),
                               require_all)

    def reordered_for(self, n_model_joints: int) -> tuple[np.ndarray, np.ndarray]:
        """(W_enc [L, J], W_dec [J, L]) over all model joints in model order; needs the ACAE to
        cover every model joint (from_arrays(require_all=True))."""
        if sorted(self.joint_indices.tolist()) != list(range(n_model_joints)):
            raise ValueError(f'{self.source}: the ACAE does not cover all {n_model_joints} '
                             f'model joints')
        w_enc = np.zeros((self.n_latents, n_model_joints), np.float32)
        w_dec = np.zeros((n_model_joints, self.n_latents), np.float32)
        w_enc[:, self.joint_indices] = self.w_enc
        w_dec[self.joint_indices] = self.w_dec
        return w_enc, w_dec
