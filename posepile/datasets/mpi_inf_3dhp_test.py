"""MPI-INF-3DHP test set converter: 6 sequences, 17 joints, one camera each, JPEG frames.

Expected layout under `root` (the unpacked mpi_inf_3dhp_test_set.zip):

    root/
      TS1/annot_data.mat                  MATLAB v7.3 (HDF5)
      TS1/imageSequence/img_000001.jpg    one JPEG per frame, numbered from 1
      TS2/ ... TS6/

annot_data.mat (MATLAB shapes; HDF5 stores them with the axis order reversed, which is undone):
    annot3       [T, 1, 17, 3]  camera frame, mm (metric; used as `world_coords`)
    univ_annot3  [T, 1, 17, 3]  the same rescaled to the universal skeleton's bone lengths, mm
                                (what the benchmark's PCK/MPJPE compare; in `extra['univ_coords']`)
    annot2       [T, 1, 17, 2]  px (used to fit the intrinsics, see below)
    valid_frame  [T, 1] or [1, T]  1 where the frame is part of the benchmark
The joint order is the 17-joint 'mpi_inf_3dhp_17' format (head top, neck, right arm, left arm,
right leg, left leg, pelvis, spine, head).

World frame = camera frame (identity extrinsics): the test set gives no world frame.
Intrinsics: the dataset's documentation gives them only in prose (TS1-TS4: studio camera,
2048x2048; TS5-TS6: GoPro outdoors, 1920x1080; focal lengths ~1499 px and ~1684 px as used by
public loaders), so they are fitted per sequence to annot2/annot3 (`posepile.camera.fit_intrinsics`, zero skew,
no distortion), which reproduces the annotation's own projection.
Split: all 'test'. Only frames with valid_frame = 1 are yielded unless `include_invalid=True`
(then `extra['valid']` says which). Not read: activity_annotation, bb_crop, the masks.
Tracks: sequence = 'TS<i>', person 0, camera_id = 'TS<i>', frame = annotation row (0-based;
the image is img_<row + 1>.jpg).
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'mpi_inf_3dhp_17'
DESCRIPTION = 'MPI-INF-3DHP test set: TS1-TS6, 17 joints (annot_data.mat v7.3), JPEG frames'
SEQUENCES = tuple(f'TS{i}' for i in range(1, 7))
IMAGE_SHAPES = {**{f'TS{i}': (2048, 2048) for i in range(1, 5)},
                **{f'TS{i}': (1080, 1920) for i in range(5, 7)}}
N_JOINTS = 17


def load_annotations(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """{'annot3', 'univ_annot3': [T, 17, 3] mm, 'annot2': [T, 17, 2] px, 'valid_frame': [T] bool}
    from a v7.3 annot_data.mat."""
    import h5py
    path = common.require_file(path, 'annot_data.mat (MATLAB v7.3 / HDF5)')
    try:
        f = h5py.File(path, 'r')
    except OSError as e:
        raise common.DatasetFormatError(
            f'{path}: not a MATLAB v7.3 (HDF5) file ({e}); expected annot3, univ_annot3, annot2, '
            f'valid_frame') from None
    with f:
        def field(key, dim):
            # h5py shows MATLAB's column-major [3 17 1 N] axis-reversed: (N, 1, 17, 3), as public
            # loaders read the released files (annot3[:, 0]).
            if key not in f:
                raise common.DatasetFormatError(f'{path}: missing field {key!r}')
            arr = np.asarray(f[key][()])
            return common.get_field({key: arr}, key, path, (None, 1, N_JOINTS, dim))[:, 0]

        out = {'annot3': field('annot3', 3), 'univ_annot3': field('univ_annot3', 3),
               'annot2': field('annot2', 2)}
        if 'valid_frame' not in f:
            raise common.DatasetFormatError(f"{path}: missing field 'valid_frame'")
        valid = np.asarray(f['valid_frame'][()]).reshape(-1)
    n = len(out['annot3'])
    if valid.shape != (n,) or len(out['univ_annot3']) != n or len(out['annot2']) != n:
        raise common.DatasetFormatError(
            f"{path}: fields disagree on the frame count (annot3 {n}, univ_annot3 "
            f"{len(out['univ_annot3'])}, annot2 {len(out['annot2'])}, valid_frame {valid.size})")
    out['valid_frame'] = valid > 0
    return out


def convert(root, sequences: Iterable[str] | None = None,
            include_invalid: bool = False) -> Iterator[Pose3DExample]:
    """Yields the test frames; see the module docstring.

    Args:
        root: the unpacked test set.
        sequences: 'TS1'..'TS6'; default: those whose directory exists (error if none).
        include_invalid: also yield frames with valid_frame = 0.
    """
    root = pathlib.Path(root)
    if sequences is None:
        sequences = [s for s in SEQUENCES if (root / s).is_dir()]
        if not sequences:
            raise common.DatasetFormatError(f'{root}: no sequence directories TS1..TS6')
    names = joints.union_names(SKELETON)
    for seq in sequences:
        if seq not in SEQUENCES:
            raise ValueError(f'unknown MPI-INF-3DHP test sequence {seq!r}; expected {SEQUENCES}')
        annot_path = root / seq / 'annot_data.mat'
        ann = load_annotations(annot_path)
        valid = ann['valid_frame']
        # The annotation determines the intrinsics: annot2 is annot3 projected.
        camera = common.camera_from_annotation(ann['annot3'][valid], ann['annot2'][valid],
                                               f'{annot_path} annot2 vs annot3')
        coords2d = camera.world_to_image(ann['annot3'].astype(np.float64))
        if not include_invalid:
            count_skipped('mpi_inf_3dhp_test', 'invalid frame (valid_frame = 0)',
                          np.count_nonzero(~valid))
        for i in np.flatnonzero(valid) if not include_invalid else range(len(valid)):
            image = common.safe_path(root, f'{seq}/imageSequence/img_{i + 1:06d}.jpg')
            common.require_file(image, f'the JPEG of frame {i} of {seq}')
            yield Pose3DExample(
                image=str(image), camera=camera.copy(), world_coords=ann['annot3'][i],
                joint_names=names,
                box=common.box_around_points(coords2d[i], imshape=IMAGE_SHAPES[seq]),
                dataset='mpi_inf_3dhp_test', sequence=seq, person=0, camera_id=seq,
                frame=int(i), split='test',
                extra={'univ_coords': ann['univ_annot3'][i], 'valid': bool(valid[i])})
