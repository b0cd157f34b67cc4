"""MuPoTS-3D converter: 20 multi-person test sequences, 17 joints per person, JPEG frames.

Expected layout under `root` (the unpacked MultiPersonTestSet.zip; `root` may be the
MultiPersonTestSet folder itself or its parent):

    root/MultiPersonTestSet/
      TS1/annot.mat          MATLAB v5: 'annotations', cell [T, P] of structs
      TS1/occlusion.mat      MATLAB v5: 'occlusion_labels', cell [T, P] of [1, 17] (optional)
      TS1/img_000000.jpg     one JPEG per frame, numbered from 0
      TS2/ ... TS20/

Each annotation struct holds annot3 [3, 17] (camera frame, mm), univ_annot3 [3, 17] (rescaled to
the universal skeleton, mm; what the benchmark compares, in `extra['univ_coords']`), annot2
[2, 17] (px) and isValidFrame (1 = the person is annotated in that frame). Joint order: the
17-joint 'mupots_17' format (same as the 3DHP test set's).

World frame = camera frame (identity extrinsics). Intrinsics: not distributed in a readable
file (the benchmark code projects with per-sequence constants), so they are fitted per sequence
to annot2/annot3 (`posepile.camera.fit_intrinsics`, zero skew, no distortion). TS1-TS5 are indoor (2048x2048),
TS6-TS20 outdoor (1920x1080).
Split: all 'test'. Invalid (isValidFrame = 0) person-frames are skipped.
Tracks: sequence = 'TS<i>', person = annotation column, camera_id = 'TS<i>', frame = row; the
examples come person by person, each in frame order. `extra['occluded']` [17] bool comes from
occlusion.mat where present.
"""
from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample

SKELETON = 'mupots_17'
DESCRIPTION = 'MuPoTS-3D: TS1-TS20, 17 joints per person (annot.mat), JPEG frames'
SEQUENCES = tuple(f'TS{i}' for i in range(1, 21))
N_JOINTS = 17


def _load_mat(path: pathlib.Path, variable: str, what: str):
    import scipy.io
    path = common.require_file(path, what)
    try:
        mat = scipy.io.loadmat(str(path), variable_names=[variable])
    except Exception as e:  # scipy raises assorted types on corrupt files
        raise common.DatasetFormatError(
            f'{path}: not a readable MATLAB v5 file ({type(e).__name__}: {e})') from None
    cells = common.get_field(mat, variable, path)
    if cells.dtype != object or cells.ndim != 2:
        raise common.DatasetFormatError(
            f'{path}: field {variable!r} must be a cell array [frames, people], got '
            f'{cells.dtype} {cells.shape}')
    return cells


def load_annotations(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """{'annot3', 'univ_annot3': [T, P, 17, 3] mm, 'annot2': [T, P, 17, 2] px,
    'valid': [T, P] bool} from a MuPoTS annot.mat (structs; invalid entries are NaN)."""
    path = pathlib.Path(path)
    cells = _load_mat(path, 'annotations', "annot.mat with cell 'annotations' [T, P] of structs")
    n_frames, n_people = cells.shape
    out = {'annot3': np.full((n_frames, n_people, N_JOINTS, 3), np.nan),
           'univ_annot3': np.full((n_frames, n_people, N_JOINTS, 3), np.nan),
           'annot2': np.full((n_frames, n_people, N_JOINTS, 2), np.nan),
           'valid': np.zeros((n_frames, n_people), bool)}
    for t in range(n_frames):
        for p in range(n_people):
            struct = cells[t, p]
            where = f'{path} [annotations{{{t + 1},{p + 1}}}]'
            names = struct.dtype.names or ()

            def field(key, dim):
                if key not in names:
                    raise common.DatasetFormatError(f'{where}: missing field {key!r}')
                return common.get_field({key: struct[key].item()}, key, where, (dim, N_JOINTS))

            if 'isValidFrame' not in names:
                raise common.DatasetFormatError(f"{where}: missing field 'isValidFrame'")
            valid = bool(np.asarray(struct['isValidFrame'].item()).reshape(-1)[0])
            out['valid'][t, p] = valid
            if valid:
                out['annot3'][t, p] = field('annot3', 3).T
                out['univ_annot3'][t, p] = field('univ_annot3', 3).T
                out['annot2'][t, p] = field('annot2', 2).T
    return out


def _occlusion(path: pathlib.Path, shape: tuple[int, int]) -> np.ndarray | None:
    if not path.is_file():
        return None
    cells = _load_mat(path, 'occlusion_labels', "occlusion.mat with cell 'occlusion_labels'")
    if cells.shape != shape:
        raise common.DatasetFormatError(
            f"{path}: field 'occlusion_labels' has shape {cells.shape}, expected {shape} like "
            f"annot.mat")
    return np.stack([common.get_field({'occlusion_labels': c}, 'occlusion_labels', path,
                                      (1, N_JOINTS))[0] for c in cells.reshape(-1)]
                    ).reshape(*shape, N_JOINTS) > 0


def convert(root, sequences: Iterable[str] | None = None) -> Iterator[Pose3DExample]:
    """Yields one example per valid (sequence, person, frame); see the module docstring.

    Args:
        root: MultiPersonTestSet or its parent directory.
        sequences: 'TS1'..'TS20'; default: those whose directory exists (error if none).
    """
    root = pathlib.Path(root)
    if (root / 'MultiPersonTestSet').is_dir():
        root = root / 'MultiPersonTestSet'
    if sequences is None:
        sequences = [s for s in SEQUENCES if (root / s).is_dir()]
        if not sequences:
            raise common.DatasetFormatError(
                f'{root}: no sequence directories TS1..TS20 (nor MultiPersonTestSet/TS*)')
    names = joints.union_names(SKELETON)
    for seq in sequences:
        if seq not in SEQUENCES:
            raise ValueError(f'unknown MuPoTS-3D sequence {seq!r}; expected TS1..TS20')
        annot_path = root / seq / 'annot.mat'
        ann = load_annotations(annot_path)
        valid = ann['valid']
        occluded = _occlusion(root / seq / 'occlusion.mat', valid.shape)
        # The annotation determines the intrinsics: annot2 is annot3 projected.
        camera = common.camera_from_annotation(ann['annot3'][valid], ann['annot2'][valid],
                                               f'{annot_path} annot2 vs annot3')
        imshape = (2048, 2048) if int(seq[2:]) <= 5 else (1080, 1920)
        count_skipped('mupots', 'invalid person-frame (isValidFrame = 0)',
                      np.count_nonzero(~valid))
        for person in range(valid.shape[1]):
            for t in np.flatnonzero(valid[:, person]):
                image = common.safe_path(root, f'{seq}/img_{t:06d}.jpg')
                common.require_file(image, f'the JPEG of frame {t} of {seq}')
                coords = ann['annot3'][t, person]
                extra = {'univ_coords': ann['univ_annot3'][t, person]}
                if occluded is not None:
                    extra['occluded'] = occluded[t, person]
                yield Pose3DExample(
                    image=str(image), camera=camera.copy(), world_coords=coords,
                    joint_names=names,
                    box=common.box_around_points(camera.world_to_image(coords), imshape=imshape),
                    dataset='mupots', sequence=seq, person=person, camera_id=seq, frame=int(t),
                    split='test', extra=extra)
