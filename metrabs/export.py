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
metrabs.training.checkpointing); a directory means its newest checkpoint. The SavedModel is
written to a temporary directory next to DIR and renamed when complete. The writer is
metrabs.serving.saved_model, the API metrabs.serving.inference_module.
"""
from __future__ import annotations

import argparse

from metrabs.model import restore
from metrabs.model.description import (find_nearby, joint_names_of_set, load_joint_names,
                                       register_skeletons_nearby)
from metrabs.serving.saved_model import export


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
    prefix = restore.resolve_checkpoint(args.checkpoint)
    register_skeletons_nearby(prefix)  # user-defined skeletons of the model's joints, if any
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
    model = restore.restore_model(prefix, str(config_path), names)
    export(model, args.out, acae_weights=args.acae_weights, detector=args.detector,
           bone_stats=args.bone_stats)
    print(f'exported {prefix} ({len(names)} joints) to {args.out}')


if __name__ == '__main__':
    main()
