"""MuCo-3DHP-style multi-person composites generated from the raw MPI-INF-3DHP training set.

MuCo-3DHP (Mehta et al., 3DV 2018) is a recipe, not a download: paste several 3DHP training
persons filmed by the same camera index of the studio rig into one image through the dataset's
green-screen foreground masks, nearer persons over farther ones. This converter makes such
composites itself, seeded, and yields one example per pasted person.

Expected layout under `root`: the 3DHP training set as `mpi_inf_3dhp` reads it (see that module),
downloaded WITH masks (get_dataset.sh with download_masks=1):

    root/S<s>/Seq<q>/annot.mat, camera.calibration, imageSequence/video_<c>.avi
    root/S<s>/Seq<q>/FGmasks/video_<c>.avi      red channel = person (green/blue: clothing)
    root/S<s>/Seq<q>/ChairMasks/video_<c>.avi   red channel dark on the chair (if chairs=True)

annot.mat and camera.calibration are parsed by `mpi_inf_3dhp` (annot3: camera-frame mm).

Recipe (after the authors' mpii_process_multiperson_train_set.m and
mpii_create_muco_3dhp_composites.m, and PosePile's MuCo post-processing):
  - Candidate frames per (subject, sequence): from `first_frame` (180, the authors' start, to let
    the markerless tracking settle), every `frame_stride`-th annotation row, then only rows where
    some joint moved more than `min_motion_mm` (175) since the last kept one (posepile.dedup's
    rule). Per camera, rows past the end of the RGB or mask videos and rows with no joint inside
    the image are dropped (and counted with count_skipped).
  - Composite i uses camera index cameras[i % len(cameras)] (the authors make equally many per
    camera); its `persons_per_image` persons come from different subjects (a random (sequence,
    candidate frame) of each), drawn with numpy's default_rng(seed).
  - Pixels: the farthest person's frame is the canvas; the others are pasted farthest first, by
    root (pelvis) depth in the camera frame, each with its chair first (chairs=True), edges
    softened by a Gaussian of `feather_sigma_px` (the authors smooth the masks with sigma 2 px).
    See posepile/datasets/_compositing.py. A person's foreground only counts inside its joint box
    grown by 20 % per side (PosePile keeps the mask component at its box, within 1.05 x 1.3 of it).

Each person yields a Pose3DExample. World coordinates: annot3 taken to the sequence's world frame
by its camera.calibration extrinsics, with that sequence's camera (its pixels came from it) -
exactly what `mpi_inf_3dhp` yields for the same person-frame, so the two datasets agree, and the
camera keeps the studio's orientation and the world up that `mpi_inf_3dhp` sets; the
persons of one composite thus have different world frames, which is harmless because every example
carries its own camera. Box: the projected joints' box. Mask: the person's VISIBLE part after
nearer persons and their chairs, a lazy callable rendered together with the image (the masks exist
only once the frames are decoded). A person whose every in-image joint lies inside a nearer
person's box is dropped and counted (`drop_hidden`). Tracks: sequence = composite index ('000042'), person = slot,
camera_id = camera index, frame = 0; every track holds one example, so the 100 mm dedup keeps them
all and the motion rule above does the thinning. Split: train.
"""
from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common, mpi_inf_3dhp
from posepile.datasets._compositing import Composite, CompositeImage, Layer, VisibleMask
from posepile.datasets.skip_counts import count_skipped
from posepile.dedup import dedup_mask
from posepile.example import Pose3DExample

# The persons of one composite share its image (several video seeks each): one shard for all of
# them, consecutive, so the decoding cache renders each composite once.
SHARD_BY = 'sequence'
SKELETON = mpi_inf_3dhp.SKELETON
DESCRIPTION = ('MuCo-3DHP-style composites generated from raw MPI-INF-3DHP training videos, '
               'FGmasks and ChairMasks (depth-ordered, seeded)')

# mpii_get_camera_set('relevant') = 0:10, "all cameras except the ceiling mounted ones", is the
# set the authors' MuCo script (mpii_process_multiperson_train_set.m) composites from.
PAPER_CAMERAS = tuple(range(11))
# PosePile's muco/main.sh: the authors' script makes 660k composites, of which it uses 150k.
DEFAULT_NUM_COMPOSITES = 150_000
PELVIS = 4  # row of 'pelv' in annot3's 28 joints: the root whose depth orders the pasting
REGION_MARGIN = 0.2  # foreground counts within the joint box grown by this fraction per side


@dataclasses.dataclass
class _Pool:
    """The candidate person-frames of one (subject, sequence, camera index).

    frames [N] video frame = annotation row; world [N, 28, 3] mm in the sequence's world frame;
    coords2d [N, 28, 2] px; depth [N] mm (camera-frame pelvis z)."""
    subject: str
    sequence: str
    cam_index: int
    camera: Camera
    imshape: tuple[int, int]
    video: str
    fg_mask_video: str
    chair_mask_video: str | None
    frames: np.ndarray
    world: np.ndarray
    coords2d: np.ndarray
    depth: np.ndarray


def convert(root, num_composites: int = DEFAULT_NUM_COMPOSITES, persons_per_image: int = 4,
            seed: int = 0, cameras: Iterable[int] | None = None,
            subjects: Iterable[str] | None = None, first_frame: int = 180,
            frame_stride: int = 1, min_motion_mm: float = 175.0, chairs: bool = True,
            feather_sigma_px: float = 2.0, drop_hidden: bool = True,
            dataset_name: str = 'muco_composite') -> Iterator[Pose3DExample]:
    """Yields `persons_per_image` examples per composite, composites in index order.

    Args:
        root: the unpacked 3DHP training set with FGmasks (and ChairMasks if `chairs`).
        num_composites: how many composites to make.
        persons_per_image: persons per composite, each from a different subject.
        seed: seeds the choice of persons and frames (same seed and data -> same composites).
        cameras: camera indices to composite from; default PAPER_CAMERAS (0..10).
        subjects: 'S1'..'S8' to draw from; default: those whose directory exists.
        first_frame, frame_stride, min_motion_mm: the candidate-frame rule (module docstring).
        chairs: paste each person's chair (ChairMasks) under it and count it as an occluder.
        feather_sigma_px: Gaussian softening of the paste edges, px (0: hard edges).
        drop_hidden: drop (and count) a person whose every in-image joint lies inside the joint
            box of a nearer person of the composite: it is (nearly) hidden, and training on its
            box would teach the occluder's pose. Decided from joints and boxes, without decoding.
        dataset_name: `example.dataset`.
    Raises:
        DatasetFormatError naming the file for missing or malformed files; ValueError for bad
        options or too few subjects with candidates for a camera.
    """
    root = pathlib.Path(root)
    if cameras is None:
        cameras = PAPER_CAMERAS
    cameras = (int(cameras),) if np.isscalar(cameras) else tuple(int(c) for c in cameras)
    _check_options(num_composites, persons_per_image, cameras, first_frame, frame_stride,
                   min_motion_mm, feather_sigma_px)
    num_composites, persons_per_image = int(num_composites), int(persons_per_image)
    first_frame, frame_stride = int(first_frame), int(frame_stride)
    if subjects is None:
        subjects = mpi_inf_3dhp.find_subjects(root)
    subjects = [subjects] if isinstance(subjects, str) else list(subjects)
    pools = _read_pools(root, subjects, cameras, first_frame, frame_stride, min_motion_mm,
                        chairs, dataset_name)
    by_camera = {c: _pools_by_subject(pools, c, persons_per_image) for c in cameras}
    names = joints.union_names(SKELETON)

    rng = np.random.default_rng(seed)
    for index in range(num_composites):
        cam_index = cameras[index % len(cameras)]
        subject_pools = by_camera[cam_index]
        chosen = rng.choice(len(subject_pools), size=persons_per_image, replace=False)
        picks = []
        for i_subject in chosen:
            sequences = subject_pools[i_subject]
            pool = sequences[rng.integers(len(sequences))]
            picks.append((pool, int(rng.integers(len(pool.frames)))))
        composite = Composite(tuple(_layer(pool, j) for pool, j in picks),
                              feather_sigma_px=float(feather_sigma_px))
        image = CompositeImage(composite)
        boxes = [common.box_around_points(pool.coords2d[j], imshape=pool.imshape)
                 for pool, j in picks]
        hidden = (_hidden_behind_nearer(picks, boxes) if drop_hidden
                  else np.zeros(len(picks), bool))
        for slot, (pool, j) in enumerate(picks):
            if hidden[slot]:
                count_skipped(dataset_name, "person hidden: every joint in the image lies in a "
                                            "nearer person's box")
                continue
            yield Pose3DExample(
                image=image, camera=pool.camera.copy(), world_coords=pool.world[j],
                joint_names=names,
                box=boxes[slot],
                dataset=dataset_name, sequence=f'{index:06d}', person=slot,
                camera_id=str(cam_index), frame=0, split='train',
                mask=VisibleMask(composite, slot),
                extra={'subject': pool.subject,
                       'source_sequence': f'{pool.subject}/{pool.sequence}',
                       'source_frame': int(pool.frames[j]), 'depth_mm': float(pool.depth[j])})


def _check_options(num_composites, persons_per_image, cameras, first_frame, frame_stride,
                   min_motion_mm, feather_sigma_px) -> None:
    problems = []
    if int(num_composites) != num_composites or num_composites < 0:
        problems.append(f'num_composites must be an integer >= 0, got {num_composites!r}')
    if int(persons_per_image) != persons_per_image or persons_per_image < 1:
        problems.append(f'persons_per_image must be an integer >= 1, got {persons_per_image!r}')
    if not cameras or any(c not in mpi_inf_3dhp.ALL_CAMERAS for c in cameras):
        problems.append(f'cameras must be indices in 0..13, got {list(cameras)}')
    if int(first_frame) != first_frame or first_frame < 0:
        problems.append(f'first_frame must be an integer >= 0, got {first_frame!r}')
    if int(frame_stride) != frame_stride or frame_stride < 1:
        problems.append(f'frame_stride must be an integer >= 1, got {frame_stride!r}')
    if not min_motion_mm >= 0:
        problems.append(f'min_motion_mm must be >= 0, got {min_motion_mm!r}')
    if not feather_sigma_px >= 0:
        problems.append(f'feather_sigma_px must be >= 0, got {feather_sigma_px!r}')
    if problems:
        raise ValueError('muco_composite: ' + '; '.join(problems))


def _read_pools(root: pathlib.Path, subjects: list[str], cameras: tuple[int, ...],
                first_frame: int, frame_stride: int, min_motion_mm: float, chairs: bool,
                dataset_name: str) -> list[_Pool]:
    """Candidate person-frames of every (subject, sequence, camera); only the candidate rows of
    annot3 are kept (the full arrays are ~50 MB per sequence)."""
    pools = []
    for subject in subjects:
        for seq in mpi_inf_3dhp.SEQUENCES:
            seq_dir = common.require_dir(root / subject / seq, f'sequence {seq} of {subject}')
            calibration = mpi_inf_3dhp.parse_calibration(seq_dir / 'camera.calibration')
            annot3 = mpi_inf_3dhp.load_annotations(seq_dir / 'annot.mat')
            # Motion is camera independent (a rigid change of frame keeps distances), so one
            # camera's annot3 picks the rows for all, as the authors' script does.
            rows = _moving_rows(annot3[cameras[0]], first_frame, frame_stride, min_motion_mm)
            for cam_index in cameras:
                camera, imshape = mpi_inf_3dhp.sequence_camera(calibration, cam_index, seq_dir)
                videos = _videos(seq_dir, cam_index, chairs)
                n_frames = _common_frame_count(videos)
                usable = rows[rows < n_frames]
                count_skipped(dataset_name, 'candidate frame beyond the end of the image or mask '
                              'video (candidate person-frames)', len(rows) - len(usable))
                cam_coords = annot3[cam_index, usable].astype(np.float64)
                world = camera.camera_to_world(cam_coords)
                coords2d = camera.world_to_image(world)
                inside = _any_joint_inside(coords2d, imshape)
                count_skipped(dataset_name, 'no joint inside the image (candidate person-frames)',
                              int(np.count_nonzero(~inside)))
                if not inside.any():
                    continue
                pools.append(_Pool(
                    subject=subject, sequence=seq, cam_index=cam_index, camera=camera,
                    imshape=imshape, video=videos[0], fg_mask_video=videos[1],
                    chair_mask_video=videos[2] if chairs else None, frames=usable[inside],
                    world=world[inside], coords2d=coords2d[inside],
                    depth=cam_coords[inside, PELVIS, 2]))
    return pools


def _moving_rows(cam_coords: np.ndarray, first_frame: int, frame_stride: int,
                 min_motion_mm: float) -> np.ndarray:
    """[N] int annotation rows from `first_frame` in steps of `frame_stride` where some joint
    moved more than `min_motion_mm` since the previous kept row (the first is always kept).
    cam_coords: [T, 28, 3] mm of one camera."""
    rows = np.arange(first_frame, len(cam_coords), frame_stride)
    if len(rows) == 0:
        return rows
    kept = dedup_mask(cam_coords[rows], np.zeros(len(rows), np.int64), rows, min_motion_mm)
    return rows[kept]


def _videos(seq_dir: pathlib.Path, cam_index: int, chairs: bool) -> list[str]:
    """[RGB, FGmasks, ChairMasks] video paths of one camera (ChairMasks only if `chairs`),
    each checked to exist."""
    name = f'video_{cam_index}.avi'
    paths = [common.require_file(seq_dir / 'imageSequence' / name, 'an MPI-INF-3DHP RGB video'),
             common.require_file(
                 seq_dir / 'FGmasks' / name,
                 'the foreground-mask video (red channel = person) of the same camera; '
                 'get_dataset.sh downloads it with download_masks=1')]
    if chairs:
        paths.append(common.require_file(
            seq_dir / 'ChairMasks' / name,
            'the chair-mask video (red channel dark on the chair) of the same camera; '
            'get_dataset.sh downloads it with download_masks=1, or pass chairs=False'))
    return [str(p) for p in paths]


def _common_frame_count(videos: list[str]) -> int:
    """Frames present in all of the videos; their frame sizes must agree (masks are per pixel)."""
    (n, shape), *others = [common.video_info(v) for v in videos]
    for path, (n_other, shape_other) in zip(videos[1:], others):
        if shape_other != shape:
            raise common.DatasetFormatError(
                f'{path}: frames are {shape_other[1]}x{shape_other[0]} but {videos[0]} has '
                f'{shape[1]}x{shape[0]} (a mask video must match its RGB video pixel for pixel)')
        n = min(n, n_other)
    return n


def _hidden_behind_nearer(picks: list[tuple[_Pool, int]], boxes: list[np.ndarray]) -> np.ndarray:
    """[S] bool per slot: every in-image joint of that person lies inside the joint box (`boxes`
    [S] of [x, y, w, h] px, the examples' boxes) of a person nearer to the camera.

    A person whose visible mask is empty satisfies this as a rule (its joints lie on its body,
    which nearer bodies, inside their boxes, cover); the converse is an approximation: such a
    person may still show a sliver between the nearer ones.
    """
    coords = np.stack([pool.coords2d[j] for pool, j in picks])  # [S, J, 2] px
    depth = np.array([pool.depth[j] for pool, j in picks])  # [S] mm
    imshape = picks[0][0].imshape
    boxes = np.stack(boxes)  # [S, 4]
    low, high = boxes[:, None, None, :2], boxes[:, None, None, :2] + boxes[:, None, None, 2:]
    # inside[t, s, j]: joint j of person s lies in the box of person t.
    inside = np.all((coords[None] >= low) & (coords[None] <= high), axis=-1)
    nearer = depth[:, None] < depth[None, :]  # [t, s]: t is nearer than s
    covered = np.any(inside & nearer[..., None], axis=0)  # [S, J]
    in_image = _joints_inside(coords, imshape)
    return np.all(covered | ~in_image, axis=-1) & in_image.any(axis=-1)


def _joints_inside(coords2d: np.ndarray, imshape: tuple[int, int]) -> np.ndarray:
    """[..., J] bool: the joint lies within the image."""
    height, width = imshape
    return ((coords2d[..., 0] >= 0) & (coords2d[..., 0] < width) &
            (coords2d[..., 1] >= 0) & (coords2d[..., 1] < height))


def _any_joint_inside(coords2d: np.ndarray, imshape: tuple[int, int]) -> np.ndarray:
    """[N] bool: some joint of [N, J, 2] px lies within the image (the authors' frame rule)."""
    return _joints_inside(coords2d, imshape).any(axis=-1)


def _pools_by_subject(pools: list[_Pool], cam_index: int,
                      persons_per_image: int) -> list[list[_Pool]]:
    """Per subject (sorted, so the draw does not depend on directory order), its pools of this
    camera; ValueError if fewer subjects than persons_per_image have any."""
    grouped: dict[str, list[_Pool]] = {}
    for pool in pools:
        if pool.cam_index == cam_index:
            grouped.setdefault(pool.subject, []).append(pool)
    if len(grouped) < persons_per_image:
        raise ValueError(
            f'muco_composite: camera {cam_index} has candidate frames of {len(grouped)} subjects '
            f'({", ".join(sorted(grouped)) or "none"}); persons_per_image={persons_per_image} '
            f'needs that many different subjects')
    return [grouped[s] for s in sorted(grouped)]


def _layer(pool: _Pool, j: int) -> Layer:
    """The compositing layer of candidate j of a pool."""
    x, y, w, h = common.box_around_points(pool.coords2d[j], margin=REGION_MARGIN,
                                          imshape=pool.imshape)
    region = (max(int(np.floor(x)), 0), max(int(np.floor(y)), 0),
              int(np.ceil(x + w)) + 1, int(np.ceil(y + h)) + 1)
    return Layer(video=pool.video, fg_mask_video=pool.fg_mask_video,
                 chair_mask_video=pool.chair_mask_video, frame=int(pool.frames[j]),
                 region=region, depth_mm=float(pool.depth[j]))
