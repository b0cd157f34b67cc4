"""Export a trained MetrabsModel as a SavedModel with the published MeTRAbs API.

    python -m metrabs.export --checkpoint=LOGDIR_OR_CKPT --out=DIR [--joint-set=NAME]
        [--model-config=JSON] [--joint-names-file=JSON] [--acae-weights=weights.npz]
        [--detector=SAVEDMODEL_DIR] [--bone-stats=JSON]

Where the model description comes from (first found wins):
    model config: --model-config (a ModelConfig JSON object, or a TrainConfig JSON with a 'model'
        object), else config.json next to the checkpoint or in its parent (what metrabs.train
        writes into the logdir);
    joint names: --joint-names-file (JSON list), else joint_names.json next to the checkpoint
        or in its parent, else --joint-set (a union 'real' / 'synthetic' / 'all' or a
        registered skeleton name, whose union names are used).
The checkpoint is a tf.train.Checkpoint with the model under the key 'model' (metrabs.train /
metrabs.checkpointing); a directory means its newest checkpoint. The SavedModel is written to a
temporary directory next to DIR and renamed when complete. The API is in metrabs.inference_module.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from metrabs.checkpointing import resolve_checkpoint
from metrabs.config import ModelConfig
from metrabs.inference_module import PoseEstimatorModule
from metrabs.model import MetrabsModel
from posepile import joints as joint_registry


def find_nearby(prefix: str, filename: str) -> pathlib.Path | None:
    """`filename` next to a checkpoint prefix or in its parent (the training logdir), if any."""
    directory = pathlib.Path(prefix).parent
    for candidate in (directory / filename, directory.parent / filename):
        if candidate.is_file():
            return candidate
    return None


def _read_json(path) -> object:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON: {e}') from e


def load_model_config(path) -> ModelConfig:
    """ModelConfig from a ModelConfig JSON object or a TrainConfig JSON (its 'model' field)."""
    d = _read_json(path)
    if not isinstance(d, dict):
        raise ValueError(f'{path}: the top level must be a JSON object')
    if isinstance(d.get('model'), dict):
        d = d['model']
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise KeyError(f'{path}: unknown ModelConfig fields {unknown}')
    return ModelConfig(**d)


def joint_names_of_set(name: str) -> list[str]:
    """Union joint names of a union ('real', 'synthetic', 'all') or of one registered skeleton."""
    if name in joint_registry.UNIONS:
        return list(joint_registry.get_union(name).names)
    return joint_registry.union_names(name)


def load_joint_names(path) -> list[str]:
    names = _read_json(path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise ValueError(f'{path}: must hold a non-empty JSON list of joint name strings')
    return names


def restore_model(checkpoint: str, config: ModelConfig, joint_names: Sequence[str]
                  ) -> MetrabsModel:
    """A MetrabsModel with the checkpoint's weights (the optimizer state is ignored)."""
    model = MetrabsModel(config, joint_names)
    side = config.proc_side
    model(tf.zeros([1, side, side, 3]), tf.eye(3, batch_shape=[1]), training=False)
    status = tf.train.Checkpoint(model=model).restore(checkpoint)
    status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as e:
        raise ValueError(f'{checkpoint}: does not match a MetrabsModel with {config.backbone} '
                         f'backbone and {len(joint_names)} joints: {e}') from e
    return model


def load_acae_weights(path) -> dict[str, np.ndarray]:
    from acae.export import load_weights  # the ACAE helper owns the file format
    return load_weights(path)


MODEL_CONFIG_ASSET = 'model_config.json'
JOINT_NAMES_ASSET = 'joint_names.json'


def write_model_description(model: MetrabsModel, saved_model_dir: str | os.PathLike):
    """Writes <dir>/assets/model_config.json (the ModelConfig) and joint_names.json (JSON list).

    The SavedModel itself does not record how its crop model was built; these files let
    metrabs.checkpointing rebuild it to map the exported variables back onto Keras weights.
    """
    assets = pathlib.Path(saved_model_dir) / 'assets'
    assets.mkdir(parents=True, exist_ok=True)
    (assets / MODEL_CONFIG_ASSET).write_text(
        json.dumps(dataclasses.asdict(model.config), indent=2), encoding='utf-8')
    (assets / JOINT_NAMES_ASSET).write_text(
        json.dumps(list(model.joint_names)), encoding='utf-8')


def export(model: MetrabsModel, out_dir: str | os.PathLike, *, acae_weights: str | None = None,
           detector: str | None = None, bone_stats: str | None = None) -> PoseEstimatorModule:
    """Builds the PoseEstimatorModule and saves it to out_dir (atomically); returns the module.

    Next to the SavedModel, out_dir/assets/ gets model_config.json and joint_names.json
    (`write_model_description`), which fine-tuning from the export (`--init-from`) reads.
    """
    out_dir = pathlib.Path(out_dir)
    stats = None
    if bone_stats is not None:
        stats = _read_json(bone_stats)
        if not isinstance(stats, dict) or not all(
                isinstance(v, (int, float)) for v in stats.values()):
            raise ValueError(f'{bone_stats}: must map "jointA-jointB" to a length in mm')
    detector_module = tf.saved_model.load(detector) if detector else None
    module = PoseEstimatorModule(
        model, bone_stats=stats,
        acae_arrays=load_acae_weights(acae_weights) if acae_weights else None,
        detector=detector_module)
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


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m metrabs.export', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--model-config')
    parser.add_argument('--joint-names-file')
    parser.add_argument('--joint-set')
    parser.add_argument('--acae-weights')
    parser.add_argument('--detector')
    parser.add_argument('--bone-stats')
    return parser.parse_args(argv)


def main(argv=None):
    args = _parse_args(argv)
    prefix = resolve_checkpoint(args.checkpoint)
    config_path = args.model_config or find_nearby(prefix, 'config.json')
    if config_path is None:
        raise SystemExit(f'{prefix}: no config.json next to the checkpoint; pass --model-config')
    names_path = args.joint_names_file or find_nearby(prefix, 'joint_names.json')
    if names_path is not None:
        names = load_joint_names(names_path)
    elif args.joint_set:
        names = joint_names_of_set(args.joint_set)
    else:
        raise SystemExit(f'{prefix}: no joint_names.json next to the checkpoint; pass '
                         f'--joint-names-file or --joint-set')
    # Any model metrabs.train writes, incl. the ACAE latent/hybrid fine-tuned ones.
    from metrabs import acae_finetune
    model = acae_finetune.restore_model(prefix, str(config_path), names)
    export(model, args.out, acae_weights=args.acae_weights, detector=args.detector,
           bone_stats=args.bone_stats)
    print(f'exported {prefix} ({len(names)} joints) to {args.out}')


if __name__ == '__main__':
    main()
