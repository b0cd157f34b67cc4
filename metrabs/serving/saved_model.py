"""Write a trained model as a SavedModel with the published MeTRAbs API (atomically).

The API is metrabs.serving.inference_module.PoseEstimatorModule; next to the SavedModel,
assets/ gets the model description (metrabs.model.description) so that fine-tuning can start
from the export.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import keras
import tensorflow as tf

from acae.export import load_weights as load_acae_weights
from metrabs.model.description import read_json, write_model_description
from metrabs.serving.detectors import COCO_PERSON_CLASS, load_detector
from metrabs.serving.inference_module import PoseEstimatorModule


def build_module(model: keras.Model, *, acae_weights: str | None = None,
                 detector: str | None = None, bone_stats: str | None = None,
                 detector_person_class: int = COCO_PERSON_CLASS,
                 detector_signature: str = 'serving_default') -> PoseEstimatorModule:
    """The PoseEstimatorModule of a model, with the optional ACAE weights (weights.npz), detector
    SavedModel directory (either kind of metrabs.serving.detectors) and bone statistics JSON."""
    stats = None
    if bone_stats is not None:
        stats = read_json(bone_stats)
        if not isinstance(stats, dict) or not all(
                isinstance(v, (int, float)) for v in stats.values()):
            raise ValueError(f'{bone_stats}: must map "jointA-jointB" to a length in mm')
    detector_module = (load_detector(detector, detector_person_class, detector_signature)
                       if detector else None)
    return PoseEstimatorModule(
        model, bone_stats=stats,
        acae_arrays=load_acae_weights(acae_weights) if acae_weights else None,
        detector=detector_module)


def export(model: keras.Model, out_dir: str | os.PathLike, **module_options
           ) -> PoseEstimatorModule:
    """Builds the PoseEstimatorModule (build_module's options) and saves it to out_dir
    (atomically); returns the module.

    Next to the SavedModel, out_dir/assets/ gets model_config.json and joint_names.json
    (`write_model_description`), which fine-tuning from the export (`--init-from`) reads.
    """
    out_dir = pathlib.Path(out_dir)
    module = build_module(model, **module_options)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=out_dir.name + '.tmp', dir=out_dir.parent))
    try:
        tf.saved_model.save(module, str(tmp), signatures=module.serving_signatures())
        write_model_description(model, tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return module
