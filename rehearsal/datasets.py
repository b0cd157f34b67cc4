"""What the rehearsal writes: every dataset of configs/mix_paper28.json and every benchmark, each
through its posepile.dataset_writers module, and how build_all and eval.run are pointed at it.

A training set's raw directory is RAW/<name>/data (name = its roots-file entry = its 'tfrecords'
directory in the mix), with RAW/<name>/body_models for the SMPL-family datasets. AGORA is the one
exception: its annotation tables are pandas DataFrame pickles, which need pandas to write; the
repository holds a tiny AGORA written once by real pandas (tests/make_agora_fixture.py), and the
rehearsal reads that directory in place.
"""
from __future__ import annotations

import dataclasses
import pathlib
import shutil
from collections.abc import Callable, Mapping
from typing import Any

from posepile.dataset_writers import (aist, aspset, behave, bmhad, bmlmovi, coco, gpa, h36m,
                                      hspace, human4d, humbi, ikea, imar, jrdb, jta, mads,
                                      mpi_inf_3dhp, mpi_inf_3dhp_test, mpii, muco_composite,
                                      mupots, panoptic, posetrack, rich, sailvos, spec, surreal,
                                      tdoh, tdpeople, tdpw, totcap, umpm)

REPO = pathlib.Path(__file__).resolve().parents[1]
AGORA_FIXTURE = REPO / 'tests' / 'data' / 'agora' / 'dataset'


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """One entry of the rehearsal's roots file.

    Attributes:
        name: the roots-file entry (the build directory, the mix's 'tfrecords').
        converter: posepile/datasets/<converter>.py.
        write: writes the raw dataset into the given directory (None: `fixed_root` is read).
        options: converter options of the roots entry.
        body_models: the writer also writes body models (into RAW/<name>_body_models).
        fixed_root: a raw directory read in place instead of writing one.
    """
    name: str
    converter: str
    write: Callable[..., Any] | None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    body_models: bool = False
    fixed_root: pathlib.Path | None = None


def _same(name, writer_module, **kwargs) -> TrainingSet:
    return TrainingSet(name, name, writer_module.write, **kwargs)


# The 28 3D training datasets and the 4 2D ones of configs/mix_paper28.json (and of
# configs/roots_example.json, whose converters and options these entries follow).
TRAINING_SETS = (
    _same('surreal', surreal),
    _same('h36m', h36m),
    TrainingSet('fit3d', 'fit3d', lambda root: imar.write(root, 'fit3d')),
    TrainingSet('chi3d', 'chi3d', lambda root: imar.write(root, 'chi3d')),
    TrainingSet('humansc3d', 'humansc3d', lambda root: imar.write(root, 'humansc3d')),
    _same('sailvos', sailvos),
    _same('panoptic', panoptic),
    # MuCo composites from raw 3DHP with its mask videos; the writer films two cameras and
    # starts at frame 0, which the converter must be told (the release starts at frame 180).
    TrainingSet('muco', 'muco_composite', muco_composite.write,
                options={'dataset_name': 'muco', 'cameras': list(muco_composite.CAMERAS),
                         'first_frame': 0, 'num_composites': 6, 'seed': 3}),
    _same('aist', aist),
    _same('gpa', gpa),
    _same('humbi', humbi),
    _same('aspset', aspset),
    TrainingSet('agora', 'agora', None, fixed_root=AGORA_FIXTURE),
    _same('tdoh', tdoh),
    _same('spec', spec, body_models=True),
    _same('tdpeople', tdpeople),
    _same('bmlmovi', bmlmovi),
    _same('mads', mads),
    _same('umpm', umpm),
    _same('bmhad', bmhad),
    TrainingSet('mpi_inf_3dhp_full', 'mpi_inf_3dhp_full', mpi_inf_3dhp.write),
    _same('totcap', totcap),
    _same('jta', jta),
    _same('ikea', ikea),
    _same('human4d', human4d),
    _same('behave', behave, body_models=True),
    _same('rich', rich, body_models=True),
    _same('hspace', hspace),
    _same('mpii', mpii),
    _same('coco', coco),
    _same('jrdb', jrdb),
    _same('posetrack', posetrack, options={'val_split': 'train'}),
)


@dataclasses.dataclass(frozen=True)
class BenchmarkSet:
    """One benchmark test set: its eval.benchmarks name, writer and eval.run protocol flags."""
    name: str
    write: Callable[[pathlib.Path], Any]
    flags: tuple[str, ...] = ()


# Each written with every sequence / subject / split its loader reads by default.
BENCHMARKS = (
    BenchmarkSet('h36m', h36m.write_test_set),
    BenchmarkSet('pw3d', tdpw.write_test_set),
    BenchmarkSet('mpi_inf_3dhp', mpi_inf_3dhp_test.write_test_set),
    BenchmarkSet('mupots', mupots.write_test_set),
)


def raw_root(entry: TrainingSet, raw: pathlib.Path) -> pathlib.Path:
    """The directory a training set's converter reads: RAW/<name>/data (or its fixed root)."""
    return entry.fixed_root if entry.write is None else raw / entry.name / 'data'


def roots_entry(entry: TrainingSet, raw: pathlib.Path) -> dict[str, Any]:
    """The training set's entry of the rehearsal's roots file (posepile.build_all)."""
    result: dict[str, Any] = {'root': str(raw_root(entry, raw)), 'converter': entry.converter,
                              'num_shards': 1}
    if entry.options:
        result['options'] = dict(entry.options)
    if entry.body_models:
        result['body_model_dir'] = str(raw / entry.name / 'body_models')
    return result


def write_training_set(entry: TrainingSet, raw: pathlib.Path) -> dict[str, Any]:
    """Writes one training set as RAW/<name>/{data, body_models} (into a temporary directory
    renamed when complete, so an interrupted write leaves nothing that looks finished) and
    returns its roots-file entry. A set already written, or read in place, is left as it is."""
    if entry.write is None:
        if not (entry.fixed_root and entry.fixed_root.is_dir()):
            raise FileNotFoundError(
                f'rehearsal: {entry.name} is read from {entry.fixed_root}, which does not exist '
                f'(it is committed with the repository: run from a full clone)')
    elif not (raw / entry.name).is_dir():
        partial = raw / f'{entry.name}.partial'
        if partial.exists():
            shutil.rmtree(partial)
        (partial / 'data').mkdir(parents=True)
        if entry.body_models:
            entry.write(partial / 'data', partial / 'body_models')
        else:
            entry.write(partial / 'data')
        partial.rename(raw / entry.name)
    return roots_entry(entry, raw)


def write_benchmark(bench: BenchmarkSet, directory: pathlib.Path) -> pathlib.Path:
    """Writes a benchmark test set as DIRECTORY/<name> (through a temporary directory, like
    write_training_set) unless it is there; returns its root."""
    root = directory / bench.name
    if not root.is_dir():
        partial = directory / f'{bench.name}.partial'
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        bench.write(partial)
        partial.rename(root)
    return root
