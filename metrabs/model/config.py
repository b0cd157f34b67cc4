"""ModelConfig: the MeTRAbs model's hyper-parameters, with the reference defaults (DESIGN.md)."""
from __future__ import annotations

import dataclasses

from metrabs.model.backbone_names import BACKBONE_NAMES, PADDINGS, check_weights_source


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture and geometry of the MeTRAbs model.

    Attributes:
        backbone: a name from `metrabs.model.backbone_names.BACKBONE_NAMES`, e.g.
            'efficientnetv2-s'.
        backbone_weights: how training initialises the backbone when it starts fresh (neither
            resumed nor --init-from): 'imagenet' (Keras' own ImageNet weights of the
            keras.applications backbones, which Keras downloads into ~/.keras/models on first
            use; see `python -m metrabs.save_backbone_weights` for machines without internet), the
            path of a local weights file of this backbone (Keras `.weights.h5` or legacy `.h5`),
            or None (random initialisation; a TrainConfig with require_backbone_weights refuses
            that). Rebuilding a trained model (export, restore) never reads it: the weights come
            from the checkpoint.
        backbone_padding: 'aligned' (stride-2 layers pad so that feature cell j is centred at
            pixel 32j + 16, where the head puts it: metrabs.model.backbones) or 'same' (Keras'
            own padding, cell j at 32j + 31; models trained before the alignment).
        proc_side: side of the square input crop, pixels.
        stride: backbone output stride, pixels per heatmap cell (256 px -> 8x8 cells at 32).
        depth: number of depth bins of the metric 3D heatmap.
        box_size_mm: side of the metric cube the 3D heatmap spans, millimetres, centred on the
            crop centre; the full crop width maps to this extent.
        centered_stride: heatmap cell i sits at pixel stride*i + stride/2 (else at stride*i).
        mix_3d_inside_fov: weight of the metric 3D estimate for joints whose 2D prediction lies
            inside the field of view; the rest comes from back-projecting the 2D prediction at the
            reconstructed depth. None disables mixing (pure metric 3D + fitted translation). This
            is the test-time value (0.5, as released); training draws it per example
            (LossConfig.random_mix).
        fov_border_factor: joints count as inside the field of view when their 2D prediction is
            at least fov_border_factor*stride pixels from the crop border.
        ghost_bn_group_size: examples per ghost batch-norm group in training; 0 means plain BN.
        dtype_policy: Keras dtype policy: 'float32', 'mixed_float16' or 'mixed_bfloat16'.
            Softmax, soft-argmax and reconstruction always run in float32.
    """

    backbone: str = 'efficientnetv2-s'
    backbone_weights: str | None = None
    backbone_padding: str = 'aligned'
    proc_side: int = 256
    stride: int = 32
    depth: int = 8
    box_size_mm: float = 2200.0
    centered_stride: bool = True
    mix_3d_inside_fov: float | None = 0.5
    fov_border_factor: float = 0.75
    ghost_bn_group_size: int = 16
    dtype_policy: str = 'float32'

    def __post_init__(self):
        if self.backbone not in BACKBONE_NAMES:
            raise ValueError(f'ModelConfig: backbone {self.backbone!r} is unknown; known: '
                             f'{", ".join(BACKBONE_NAMES)}')
        if self.backbone_weights == 'imagenet':
            check_weights_source(self.backbone, 'imagenet', 'ModelConfig.backbone_weights')
        if self.backbone_padding not in PADDINGS:
            raise ValueError(f'ModelConfig: backbone_padding must be one of {PADDINGS}, got '
                             f'{self.backbone_padding!r}')
        if self.proc_side % self.stride != 0:
            raise ValueError(
                f'ModelConfig: proc_side={self.proc_side} must be a multiple of stride={self.stride}')
        if self.depth < 1:
            raise ValueError(f'ModelConfig: depth must be >= 1, got {self.depth}')
        if self.box_size_mm <= 0:
            raise ValueError(f'ModelConfig: box_size_mm must be > 0, got {self.box_size_mm}')
        if self.mix_3d_inside_fov is not None and not 0.0 <= self.mix_3d_inside_fov <= 1.0:
            raise ValueError(
                f'ModelConfig: mix_3d_inside_fov must be in [0, 1] or None, '
                f'got {self.mix_3d_inside_fov}')
        if self.ghost_bn_group_size < 0:
            raise ValueError(
                f'ModelConfig: ghost_bn_group_size must be >= 0, got {self.ghost_bn_group_size}')
        if self.dtype_policy not in ('float32', 'mixed_float16', 'mixed_bfloat16'):
            raise ValueError(
                f'ModelConfig: dtype_policy must be float32, mixed_float16 or mixed_bfloat16, '
                f'got {self.dtype_policy!r}')

    @property
    def heatmap_side(self) -> int:
        """Cells per side of the heatmaps (8 for 256 px at stride 32)."""
        return self.proc_side // self.stride
