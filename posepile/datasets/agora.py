"""AGORA converter (Patel et al., CVPR 2021): rendered scans of people in 3D scenes, one image each.

Expected layout under `root` (the AGORA downloads, unpacked as distributed):

    root/
      SMPLX/train_<k>_withjv.pkl        k = 0..9, "Camera dataframe with SMPL-X joints and
      SMPLX/validation_<k>_withjv.pkl   vertices" (train_SMPLX.zip, validation_SMPLX.zip)
      SMPL/<the same names>             "... with SMPL joints and vertices" (train_SMPL.zip, ...)
      train_<k>/<imgPath>               images of train_<k>_withjv.pkl (3840x2160 PNG), or
                                        <imgPath stem>_1280x720.png (the 1280x720 downloads)
      validation/<imgPath>              images of all validation_<k>_withjv.pkl

Each *_withjv.pkl is a pickled pandas DataFrame (read with `posepile.pandas_pickle`, which runs
no code from the file), one row per image. Columns read, per row (lists run over the persons):
    imgPath                   image file name
    camX, camY, camZ, camYaw  camera position (Unreal cm) and yaw (deg); used only for scenes
                              whose name matches none of the fixed rigs below
    isValid, occlusion        AGORA's validity flag (occlusion within 0-90 %) and occluded %
    kid, gender (age)         kid flag (kids use SMPL(-X) with AGORA's kid template), gender
    gt_joints_3d              per person [J, 3] joints in the CAMERA frame (OpenCV axes: x right,
                              y down, z forward), METRES: J = 127 for SMPL-X (55 kinematic joints,
                              21 vertex landmarks, 51 face landmarks: the smplx package's output),
                              J = 45 for SMPL (24 joints + 21 landmarks)
    gt_joints_2d              per person [J, 2] their projection at 3840x2160 (pixel-corner
                              convention: principal point (1920, 1080))
    gt_path_smplx             paired between the SMPL and SMPL-X frames (both hold it)
Not read: X, Y, Z, Yaw (the scan's placement, already in the joints), gt_verts, ethnicity,
gt_path_smpl. The SMPL-X/SMPL parameter files and AGORA's masks are separate downloads, not read.

Camera (agora_evaluation, projection.py): a pinhole on a 36 x 20.25 mm sensor, so
f_px = f_mm / 36 * W = f_mm / 20.25 * H, principal point at the image centre, no distortion.
Scene rules by image name, first match wins: 'hdri' 50 mm at (0, 0, 170) cm, yaw 0, pitch 0;
'cam00'..'cam03' (archviz) 18 mm at fixed positions, yaw 135 / -135 / -45 / 45, pitch 30;
'ag2' 28 mm at (0, 0, 170), pitch 15; otherwise 28 mm at (camX, camY, camZ) with camYaw, pitch
0, and the camera lowered by a 1.7 m ground-plane offset. Unreal (x, y, z) cm -> AGORA's world
(y, -z, x) / 100 m; world -> camera rotation R = Rx(pitch) @ Ry(-yaw). The intrinsics are made
for the size of the image actually read (3840x2160 or 1280x720), and the principal point is put
at ((W - 1) / 2, (H - 1) / 2) in this project's pixel-centre convention (AGORA's W/2 is the
renderer's image centre in pixel-corner coordinates; half a pixel apart).

Frames: world_coords are AGORA's world frame (OpenCV-axis Unreal scene, y down), millimetres:
camera_to_world of gt_joints_3d through the scene camera above, so gravity is -y (world_up
(0, -1, 0)) and the archviz rigs' four cameras share one frame. The projection does not depend
on this choice. Every row's gt_joints_2d are checked against the camera (< 1 px at the frame's
resolution, 3840 or 1280 wide): a wrong scene rule fails loudly, not silently.

Joints: `models` picks the frames read: 'smpl' (SMPL's 24 joints, plain union names) and/or
'smplx' (SMPL-X's 55 kinematic joints, '_smplx' names); both by default, one example per person
with the joints of both, as the reference PosePile loader does. Landmark rows are used only for
the box (the 2D extent of all rows, grown by 10 %, clipped to the image).

Dropped, each counted with count_skipped: persons with isValid False, with occlusion above
`max_occlusion` (default 75 %, the PosePile loader's), kids if `drop_kids`, persons with no
joint inside the image. Split: 'train' (train_*) / 'validation' (validation_*); the test set's
ground truth is not public. Tracks: every image is its own scene sample (no video), so
sequence = '<split>/<image stem without _camNN and _1280x720>', camera_id = 'camNN' (the
archviz rigs) or '', person = index in the row, frame 0; the 100 mm dedup keeps every person.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from posepile import joints
from posepile.camera import Camera, rotation_x, rotation_y
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.example import Pose3DExample
from posepile.pandas_pickle import DataFramePickleError, load_dataframe

SKELETON = 'smpl'
DESCRIPTION = ('AGORA: SMPL + SMPL-X joints from the SMPL/ and SMPLX/ *_withjv.pkl DataFrames '
               '(read inertly), rendered PNGs')
SPLITS = ('train', 'validation')
# model -> (folder of its frames, joints kept: the kinematic ones, registry format).
MODELS = {'smpl': ('SMPL', 24, 'smpl'), 'smplx': ('SMPLX', 55, 'smplx')}
SENSOR_MM = (36.0, 20.25)  # (width, height) of AGORA's virtual camera sensor
FRAME_IMAGE_SIZE = ((3840, 2160), (1280, 720))  # resolutions gt_joints_2d may refer to
MAX_2D_ERROR_PX = 1.0
# (name substring, focal mm, position Unreal cm, yaw deg, pitch deg), first match wins.
FIXED_RIGS = (('hdri', 50.0, (0, 0, 170), 0.0, 0.0),
              ('cam00', 18.0, (400, -275, 265), 135.0, 30.0),
              ('cam01', 18.0, (400, 225, 265), -135.0, 30.0),
              ('cam02', 18.0, (-490, 170, 265), -45.0, 30.0),
              ('cam03', 18.0, (-490, -275, 265), 45.0, 30.0),
              ('ag2', 28.0, (0, 0, 170), 0.0, 15.0))
SCENE_FOCAL_MM = 28.0
SCENE_GROUND_OFFSET_M = np.array([0.0, -1.7, 0.0])  # added to the camera of the other scenes
_PERSON_COLUMNS = ('isValid', 'occlusion', 'kid', 'gender', 'gt_joints_2d', 'gt_joints_3d')
_FRAME_NAME = re.compile(r'^(?P<section>(train|validation)_\d+)_withjv\.pkl$')
_RIG_IN_NAME = re.compile(r'_(?P<cam>cam\d\d)(?=_)')


# ------------------------------------------------------------------------------------ camera
def scene_camera_pose(img_name: str, cam_xyz_cm: Sequence[float], cam_yaw_deg: float):
    """(focal mm, R world->camera [3, 3], optical centre [3] mm in AGORA's world) of an image,
    by the scene rules of the module docstring."""
    for key, focal, position, yaw, pitch in FIXED_RIGS:
        if key in img_name:
            ground = np.zeros(3)
            break
    else:
        focal, position, yaw, pitch = SCENE_FOCAL_MM, cam_xyz_cm, cam_yaw_deg, 0.0
        ground = SCENE_GROUND_OFFSET_M
    x, y, z = np.asarray(position, np.float64) / 100
    centre_m = np.array([y, -z, x]) + ground  # Unreal (x fwd, y right, z up) -> OpenCV axes
    rot = rotation_x(np.deg2rad(pitch)) @ rotation_y(np.deg2rad(-yaw))
    return focal, rot, centre_m * 1000


def intrinsics(focal_mm: float, imshape: tuple[int, int], pixel_centres: bool = True):
    """K [3, 3] of AGORA's camera for an image of (H, W) px; principal point at the centre in
    the pixel-centre convention (or at (W/2, H/2), AGORA's pixel-corner one)."""
    height, width = imshape
    shift = 0.5 if pixel_centres else 0.0
    return np.array([[focal_mm / SENSOR_MM[0] * width, 0, width / 2 - shift],
                     [0, focal_mm / SENSOR_MM[1] * height, height / 2 - shift], [0, 0, 1]])


def image_camera(img_name: str, cam_xyz_cm, cam_yaw_deg: float,
                 imshape) -> tuple[Camera, float]:
    """(the Camera (world = AGORA's world, mm) of an image of (H, W) px, its focal length mm)."""
    focal, rot, centre_mm = scene_camera_pose(img_name, cam_xyz_cm, cam_yaw_deg)
    return Camera(centre_mm, rot, intrinsics(focal, imshape), world_up=(0, -1, 0)), focal


def frame_2d_scale(gt_2d: np.ndarray, cam_m: np.ndarray, focal_mm: float) -> int | None:
    """The width (3840 or 1280) whose AGORA projection of `cam_m` [N, 3] m gives `gt_2d`
    [N, 2] within MAX_2D_ERROR_PX, else None. Points behind the camera are not compared."""
    front = cam_m[:, 2] > 1e-6
    if not front.any():
        return FRAME_IMAGE_SIZE[0][0]
    for width, height in FRAME_IMAGE_SIZE:
        K = intrinsics(focal_mm, (height, width), pixel_centres=False)
        projected = cam_m[front, :2] / cam_m[front, 2:] @ K[:2, :2].T + K[:2, 2]
        if np.max(np.abs(projected - gt_2d[front])) < MAX_2D_ERROR_PX:
            return width
    return None


# ------------------------------------------------------------------------------------ frames
def read_frame(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The columns of one *_withjv.pkl, checked: imgPath, camX..camYaw, and the per-person list
    columns (each row's lists as long as its gt_joints_3d list). The per-person arrays are
    shape-checked when used (`person_joints`)."""
    common.require_file(path, 'an AGORA *_withjv.pkl DataFrame')
    try:
        frame = load_dataframe(path)
    except DataFramePickleError as e:
        raise common.DatasetFormatError(str(e)) from None
    columns = frame.columns
    for name in ('imgPath', 'camX', 'camY', 'camZ', 'camYaw', *_PERSON_COLUMNS):
        if name not in columns:
            raise common.DatasetFormatError(
                f'{path}: missing column {name!r} (found {sorted(columns)})')
    for row, joints3d in enumerate(columns['gt_joints_3d']):
        if not isinstance(joints3d, (list, tuple)):
            raise common.DatasetFormatError(
                f'{path}: row {row}: column gt_joints_3d holds a {type(joints3d).__name__}, '
                f'expected a list over persons')
        for name in _PERSON_COLUMNS + ('gt_path_smplx',) * ('gt_path_smplx' in columns):
            cell = columns[name][row]
            if not isinstance(cell, (list, tuple)) or len(cell) != len(joints3d):
                raise common.DatasetFormatError(
                    f'{path}: row {row} ({columns["imgPath"][row]}): column {name!r} is not a '
                    f'list of {len(joints3d)} persons like gt_joints_3d')
    names = [str(n) for n in columns['imgPath']]
    if len(set(names)) != len(names):
        raise common.DatasetFormatError(f'{path}: column imgPath has duplicate images')
    return columns


def person_joints(columns, row: int, person: int, n_joints: int, path) -> tuple:
    """(gt_joints_3d [J, 3] m, gt_joints_2d [J, 2] px) of one person, shape-checked."""
    where = f'{path}: row {row} ({columns["imgPath"][row]}) person {person}'
    arrays = []
    for name, width in (('gt_joints_3d', 3), ('gt_joints_2d', 2)):
        try:
            arr = np.asarray(columns[name][row][person], np.float64)
        except (TypeError, ValueError):
            raise common.DatasetFormatError(f'{where}: {name} is not numeric') from None
        if arr.ndim != 2 or arr.shape[1] != width or len(arr) < n_joints:
            raise common.DatasetFormatError(
                f'{where}: {name} has shape {arr.shape}, expected [J >= {n_joints}, {width}]')
        arrays.append(arr)
    if len(arrays[0]) != len(arrays[1]):
        raise common.DatasetFormatError(
            f'{where}: gt_joints_3d has {len(arrays[0])} joints, gt_joints_2d {len(arrays[1])}')
    return arrays[0], arrays[1]


# ------------------------------------------------------------------------------------ convert
def convert(root, models: Iterable[str] = ('smpl', 'smplx'), splits: Iterable[str] = SPLITS,
            drop_kids: bool = False, max_occlusion: float = 75.0,
            strict_2d: bool = True) -> Iterator[Pose3DExample]:
    """Yields one example per kept person of every image (module docstring).

    Args:
        root: the unpacked dataset.
        models: frames to read, any of 'smpl', 'smplx' (their joints are concatenated).
        splits: 'train' and/or 'validation'.
        drop_kids: drop persons with the kid flag.
        max_occlusion: drop persons more occluded than this (percent).
        strict_2d: a person whose gt_joints_2d disagree with the camera raises
            DatasetFormatError; if False, the person is dropped and counted instead.
    """
    root = pathlib.Path(root)
    models = tuple(models)
    if not models or any(m not in MODELS for m in models) or len(set(models)) != len(models):
        raise ValueError(f'models must be distinct names from {list(MODELS)}, got {models}')
    names = [n for m in models for n in joints.union_names(MODELS[m][2])]
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f'unknown AGORA split {split!r}; expected one of {SPLITS}')
        for section in _sections(root, models, split):
            yield from _convert_section(root, section, split, models, names, drop_kids,
                                        max_occlusion, strict_2d)


def _sections(root: pathlib.Path, models: Sequence[str], split: str) -> list[str]:
    """'train_0', 'train_1', ... in numeric order: the frames of `split` in any model's folder
    (each model must then have every one of them)."""
    found = set()
    for model in models:
        folder = common.require_dir(root / MODELS[model][0],
                                    f'the AGORA {MODELS[model][0]} *_withjv.pkl DataFrames')
        for path in folder.iterdir():
            match = _FRAME_NAME.match(path.name)
            if match and match['section'].startswith(split + '_'):
                found.add(match['section'])
    if not found:
        raise common.DatasetFormatError(
            f'missing file {root / MODELS[models[0]][0]}/{split}_<k>_withjv.pkl (expected: the '
            f'AGORA {split} DataFrames)')
    return sorted(found, key=lambda s: int(s.rsplit('_', 1)[1]))


def _convert_section(root, section, split, models, names, drop_kids, max_occlusion, strict_2d):
    paths = {m: root / MODELS[m][0] / f'{section}_withjv.pkl' for m in models}
    frames = {m: read_frame(paths[m]) for m in models}
    first = models[0]
    rows_of = {m: {str(n): i for i, n in enumerate(frames[m]['imgPath'])} for m in models}
    for m in models[1:]:
        if rows_of[m].keys() != rows_of[first].keys():
            raise common.DatasetFormatError(
                f'{paths[m]}: lists other images than {paths[first]} (they must describe the '
                f'same rows)')
    image_dir = section if split == 'train' else 'validation'
    for img_name, row in rows_of[first].items():
        rows = {m: rows_of[m][img_name] for m in models}
        _check_rows_pair(frames, rows, paths, img_name)
        image_path = _find_image(root, image_dir, img_name, paths[first])
        imshape = common.image_shape(image_path, 'an AGORA image (PNG)')
        columns = frames[first]
        cam_xyz = [float(columns[k][row]) for k in ('camX', 'camY', 'camZ')]
        camera, focal = image_camera(img_name, cam_xyz, float(columns['camYaw'][row]), imshape)
        sequence, camera_id = _track_names(split, img_name)
        for person in range(len(columns['gt_joints_3d'][row])):
            if not _keep_person(columns, row, person, drop_kids, max_occlusion):
                continue
            measured = _checked_joints(frames, rows, paths, person, focal, img_name, strict_2d)
            if measured is None:
                continue
            box = _box(camera, np.concatenate(list(measured.values())) * 1000.0, imshape)
            if box is None:
                count_skipped('agora', 'no joint inside the image')
                continue
            world_mm = np.concatenate([camera.camera_to_world(cam_m[:MODELS[m][1]] * 1000.0)
                                       for m, cam_m in measured.items()])
            yield Pose3DExample(
                image=str(image_path), camera=camera.copy(), world_coords=world_mm,
                joint_names=names, box=box, dataset='agora', sequence=sequence, person=person,
                camera_id=camera_id, frame=0, split=split,
                extra={'gender': str(columns['gender'][row][person]),
                       'kid': bool(columns['kid'][row][person]),
                       'occlusion': float(columns['occlusion'][row][person])})


def _checked_joints(frames, rows, paths, person, focal, img_name, strict_2d):
    """{model: gt_joints_3d [J, 3] camera-frame metres} of one person, each checked against its
    gt_joints_2d through the scene camera; None (counted) on a disagreement if not strict_2d."""
    measured = {}
    for m in rows:
        cam_m, gt_2d = person_joints(frames[m], rows[m], person, MODELS[m][1], paths[m])
        if frame_2d_scale(gt_2d, cam_m, focal) is None:
            if strict_2d:
                raise common.DatasetFormatError(
                    f'{paths[m]}: row {rows[m]} ({img_name}) person {person}: gt_joints_2d '
                    f'disagree (> {MAX_2D_ERROR_PX} px) with the AGORA camera of this scene '
                    f'({focal:g} mm); wrong scene rule?')
            count_skipped('agora', 'gt_joints_2d disagree with the scene camera')
            return None
        measured[m] = cam_m
    return measured


def _check_rows_pair(frames, rows, paths, img_name) -> None:
    """The SMPL and SMPL-X rows of an image list the same persons (count, SMPL-X fit files)."""
    models = list(rows)
    first = models[0]
    for m in models[1:]:
        a = frames[first]['gt_joints_3d'][rows[first]]
        b = frames[m]['gt_joints_3d'][rows[m]]
        same_fits = ('gt_path_smplx' not in frames[first] or 'gt_path_smplx' not in frames[m]
                     or list(frames[first]['gt_path_smplx'][rows[first]])
                     == list(frames[m]['gt_path_smplx'][rows[m]]))
        if len(a) != len(b) or not same_fits:
            raise common.DatasetFormatError(
                f'{paths[m]}: image {img_name} lists other persons than in {paths[first]} '
                f'({len(b)} vs {len(a)}, or other gt_path_smplx)')


def _keep_person(columns, row, person, drop_kids, max_occlusion) -> bool:
    """Applies the drop rules, counting each drop."""
    if not bool(columns['isValid'][row][person]):
        count_skipped('agora', 'isValid False (occlusion outside 0-90 %)')
        return False
    if float(columns['occlusion'][row][person]) > max_occlusion:
        count_skipped('agora', f'occlusion above max_occlusion ({max_occlusion:g} %)')
        return False
    if drop_kids and bool(columns['kid'][row][person]):
        count_skipped('agora', 'kid (drop_kids)')
        return False
    return True


def _find_image(root, image_dir: str, img_name: str, source) -> pathlib.Path:
    """The image of a row: <dir>/<imgPath>, or the 1280x720 download's <stem>_1280x720.png."""
    candidates = [img_name]
    if img_name.endswith('.png') and not img_name.endswith('_1280x720.png'):
        candidates.append(img_name[:-len('.png')] + '_1280x720.png')
    for name in candidates:
        path = common.safe_path(root, f'{image_dir}/{name}', source)
        if path.is_file():
            return path
    raise common.DatasetFormatError(
        f'missing file {root / image_dir / candidates[0]} (expected: the image of a row of '
        f'{source}; also looked for {candidates[-1]})')


def _track_names(split: str, img_name: str) -> tuple[str, str]:
    """(sequence, camera_id): the archviz rigs' cameras share a sequence (same scene sample)."""
    stem = img_name[:-len('.png')] if img_name.endswith('.png') else img_name
    stem = stem.removesuffix('_1280x720')
    match = _RIG_IN_NAME.search(stem)
    if match is None:
        return f'{split}/{stem}', ''
    return f'{split}/{stem[:match.start()]}{stem[match.end():]}', match['cam']


def _box(camera: Camera, points_cam_mm: np.ndarray, imshape) -> np.ndarray | None:
    """Box of the points in front of the camera, clipped to the image; None if none is inside."""
    front = points_cam_mm[points_cam_mm[:, 2] > 1.0]
    if not len(front):
        return None
    uv = camera.camera_to_image(front)
    if not common.inside_image(uv, imshape).any():
        return None
    box = common.box_around_points(uv, imshape=imshape)
    return box if box[2] > 0 and box[3] > 0 else None
