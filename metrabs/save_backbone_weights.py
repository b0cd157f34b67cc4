"""Save Keras' ImageNet weights of a backbone to a file, for machines without internet.

    python -m metrabs.save_backbone_weights --backbone=efficientnetv2-s --out=effv2s.weights.h5

Run it where Keras can download (it fetches keras.applications' ImageNet weights into its cache,
~/.keras/models, or reads them from there), copy the file to the cluster, and train with
`--backbone-weights=effv2s.weights.h5` (or "backbone_weights" in the config's model). The file
holds this project's rebuilt backbone (ghost batch norm, stride alignment), so it loads into the
same backbone at any input side.
"""
from __future__ import annotations

import argparse
import os
import sys

from metrabs.model import backbones


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m metrabs.save_backbone_weights',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--backbone', required=True, choices=backbones.IMAGENET_BACKBONES)
    parser.add_argument('--out', required=True, help='output file, ending in .weights.h5')
    parser.add_argument('--padding', default='aligned', choices=backbones.PADDINGS,
                        help='ModelConfig.backbone_padding of the models that will load it')
    args = parser.parse_args(argv)
    if not args.out.endswith('.weights.h5'):
        print('metrabs.save_backbone_weights: --out must end in .weights.h5 (Keras\' format)',
              file=sys.stderr)
        return 2
    side = 256
    model = backbones.build_backbone(args.backbone, side, 0, padding=args.padding)
    backbones.load_initial_weights(model, args.backbone, 'imagenet', side)
    directory = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(directory, exist_ok=True)
    # Keras insists on the suffix, so the temporary name keeps it; the rename is atomic.
    tmp = os.path.join(directory, f'.tmp{os.getpid()}.{os.path.basename(args.out)}')
    model.save_weights(tmp)
    os.replace(tmp, args.out)
    print(f'wrote the ImageNet weights of {args.backbone} to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
