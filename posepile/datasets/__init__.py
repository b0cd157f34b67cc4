"""Dataset converters: one module per dataset, `posepile/datasets/<name>.py`.

A converter module defines:
    SKELETON: str            the skeleton format (joint registry name) its 3D joints use
    DESCRIPTION: str         one line: what it reads
    def convert(root: pathlib.Path, **options) -> Iterator[Pose3DExample]
        Reads the dataset exactly as distributed under `root` and yields examples. Each track
        (dataset, sequence, person, camera_id) must come in increasing `frame` order.
        Persons or frames it drops on purpose are reported with
        `skip_counts.count_skipped(dataset, reason)` (they appear in the build's manifest).
    SHARD_BY: str            optional: 'sequence' if the examples of a sequence share an expensive
                             image (e.g. composites), so posepile.build keeps them in one shard
    def skeleton_of(root, **options) -> str
                             optional, for converters whose skeleton depends on the data (the
                             `custom` one, SKELETON = None): the skeleton of the dataset at root

The module name is the dataset name used by `python -m posepile.build --dataset=NAME`.
"""
from __future__ import annotations

import importlib
import pkgutil
import types

_NOT_CONVERTERS = {'common', 'skip_counts'}


def available() -> list[str]:
    """Names of all converter modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith('_') and m.name not in _NOT_CONVERTERS)


def get_converter(name: str) -> types.ModuleType:
    """The converter module for dataset `name`; raises with the list of known names."""
    if name not in available():
        raise KeyError(f'unknown dataset {name!r}; registered converters: {", ".join(available())}')
    module = importlib.import_module(f'{__name__}.{name}')
    for attr in ('SKELETON', 'convert'):
        if not hasattr(module, attr):
            raise TypeError(f'converter posepile/datasets/{name}.py lacks {attr}')
    return module
