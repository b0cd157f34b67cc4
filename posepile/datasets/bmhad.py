"""Berkeley MHAD converter (Ofli et al., WACV 2013): 43 optical mocap markers, 4 camera clusters.

Expected layout under `root` (the released archives unpacked in place; file formats as read by
the public PosePile loader of the paper's authors, posepile/ds/bmhad/main.py, the only
machine-readable description of the calibration files we could establish):

    root/
      Mocap/OpticalData/moc_s<SS>_a<AA>_r<RR>.c3d     43 LED markers per frame, 480 Hz
      Calibration/camcfg_l0<L>.yml                    OpenCV FileStorage, per cluster L = 1..4:
          'Number of cameras': n;  'Camera_<i>' (i = 1..n): 'K' 3x3, 'Dist' 4 (k1 k2 p1 p2),
          'PosRel' 6 = translation (3) then Rodrigues rotation (3), cluster -> camera
      Calibration/RwTw_l0<L>.txt                      'Rw=<9 numbers> \\nTw=<3 numbers> \\n':
                                                      world -> cluster rotation (row-major) and
                                                      translation
      Camera/Correspondences/corr_moc_img_s<SS>_a<AA>_r<RR>.txt
                                                      one row per image frame; column 2
                                                      (0-based) is the mocap frame index
      Camera/Cluster0<L>/Cam0<C>/S<SS>/A<AA>/R<RR>/img_l0<L>_c0<C>_s<SS>_a<AA>_r<RR>_<FFFFF>.pgm
                                                      Bayer (GB) raw frames, 640x480
      Kinect/ Accelerometer/ Audio/ Mocap/SkeletalData/  (not read)

World frame: the c3d marker coordinates (mm) turned by (x, y, z) -> (-x, z, y) as in the
reference loader, which is the frame the RwTw files calibrate (y up). Camera extrinsics are the
composition world -> cluster (Rw, Tw) -> camera (PosRel), all in mm.
Joints: the 43 markers in c3d order (skeleton 'bmhad'); markers the mocap lost are NaN.
Split: no 3D-pose protocol exists (the paper trains on all of it); everything is 'train' except
`validation_subjects`. Tracks: sequence 's<SS>/a<AA>/r<RR>', person 0, camera_id 'l0<L>c0<C>',
frame = image frame index. Recordings the release lacks (s04 a08 r05 everywhere; s05 a02 r05 and
s10 a08 r05 in clusters 3 and 4, per the dataset's website) are skipped when absent. Images are
demosaiced lazily when the example's `image` is called.
"""
from __future__ import annotations

import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np

from posepile import joints
from posepile.camera import Camera
from posepile.datasets import common
from posepile.datasets.skip_counts import count_skipped
from posepile.datasets._c3d import read_c3d
from posepile.example import Pose3DExample

SKELETON = 'bmhad'
DESCRIPTION = 'Berkeley MHAD: 43 mocap markers (c3d), 4 calibrated camera clusters, Bayer pgm'
N_MARKERS = 43
CLUSTERS = (1, 2, 3, 4)
WORLD_UP = (0.0, 1.0, 0.0)
# c3d (x, y, z) -> world (-x, z, y): the frame the RwTw calibration refers to.
C3D_TO_WORLD = np.array([[-1.0, 0, 0], [0, 0, 1], [0, 1, 0]])
# (subject, action, repetition, cluster or None = all): recordings missing from the release.
KNOWN_MISSING = ((4, 8, 5, None), (5, 2, 5, 3), (5, 2, 5, 4), (10, 8, 5, 3), (10, 8, 5, 4))
_MOCAP_NAME = re.compile(r'^moc_s(\d\d)_a(\d\d)_r(\d\d)\.c3d$')
_NUMBER = r'[-+0-9.eE]+'
_RWTW = re.compile(rf'^\s*Rw\s*=\s*((?:{_NUMBER}\s+){{8}}{_NUMBER})\s*\n'
                   rf'\s*Tw\s*=\s*((?:{_NUMBER}\s+){{2}}{_NUMBER})\s*$')


class BayerFrame:
    """Picklable lazy image: reads a Bayer-GB .pgm frame and returns RGB uint8 [H, W, 3]."""

    def __init__(self, path: str | pathlib.Path):
        self.path = str(path)

    def __repr__(self) -> str:
        return f'BayerFrame({self.path!r})'

    def __call__(self) -> np.ndarray:
        import cv2
        common.require_file(self.path, 'a Bayer-pattern .pgm image')
        raw = cv2.imread(self.path, cv2.IMREAD_ANYDEPTH)
        if raw is None or raw.ndim != 2:
            raise common.DatasetFormatError(
                f'{self.path}: not a single-channel PGM image (expected Bayer GB raw frame)')
        if raw.dtype == np.uint16:  # keep the 8 most significant bits of 16-bit raw frames
            raw = (raw >> 8).astype(np.uint8)
        return cv2.cvtColor(raw, cv2.COLOR_BAYER_GB2RGB)


def read_world_to_cluster(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """(Rw [3, 3], Tw [3]) from a RwTw_l0<L>.txt file: world -> cluster, p_cl = Rw p + Tw (mm)."""
    path = common.require_file(path, "'Rw=<9 numbers>' and 'Tw=<3 numbers>' lines")
    match = _RWTW.match(path.read_text(errors='replace'))
    if match is None:
        raise common.DatasetFormatError(
            f"{path}: expected two lines 'Rw=<9 numbers>' and 'Tw=<3 numbers>'")
    R = np.array(match[1].split(), np.float64).reshape(3, 3)
    t = np.array(match[2].split(), np.float64)
    return R, t


def read_cluster_cameras(root: pathlib.Path, cluster: int) -> list[Camera]:
    """The cameras of cluster `cluster` (1..4), world frame in mm, in 'Camera_<i>' order."""
    import cv2
    from scipy.spatial.transform import Rotation
    Rw, Tw = read_world_to_cluster(root / 'Calibration' / f'RwTw_l{cluster:02d}.txt')
    path = common.require_file(
        root / 'Calibration' / f'camcfg_l{cluster:02d}.yml',
        "OpenCV YAML with 'Number of cameras' and Camera_<i>/{K,Dist,PosRel}")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as e:  # the Python binding wraps parse errors in SystemError
        raise common.DatasetFormatError(
            f'{path}: not a readable OpenCV YAML file ({e.__cause__ or e})') from None
    try:
        n_node = fs.getNode('Number of cameras')
        if n_node.empty() or not n_node.isReal() and not n_node.isInt():
            raise common.DatasetFormatError(f"{path}: missing field 'Number of cameras'")
        cameras = []
        for i in range(1, int(n_node.real()) + 1):
            node = fs.getNode(f'Camera_{i}')
            where = f'{path} [Camera_{i}]'
            if node.empty():
                raise common.DatasetFormatError(f"{path}: missing field 'Camera_{i}'")
            fields = {key: node.getNode(key).mat() for key in ('K', 'Dist', 'PosRel')}
            fields = {key: value for key, value in fields.items() if value is not None}
            K = common.get_field(fields, 'K', where, shape=(3, 3))
            flat = {key: np.asarray(value).reshape(-1) for key, value in fields.items()}
            dist = common.get_field(flat, 'Dist', where, shape=(4,))
            pos_rel = common.get_field(flat, 'PosRel', where, shape=(6,))
            R_rel = Rotation.from_rotvec(pos_rel[3:]).as_matrix()
            # world -> camera: p_cam = R_rel (Rw p + Tw) + t_rel, so R = R_rel Rw and the
            # optical centre is where p_cam = 0.
            R = R_rel @ Rw
            translation = R_rel @ Tw + pos_rel[:3]
            centre = -R.T @ translation
            # The world used here is C3D_TO_WORLD-turned c3d space, as the calibration expects.
            cameras.append(Camera(centre, R, K, dist, world_up=WORLD_UP))
        if not cameras:
            raise common.DatasetFormatError(f"{path}: field 'Number of cameras' is 0")
        return cameras
    finally:
        fs.release()


def read_correspondences(path: str | pathlib.Path) -> np.ndarray:
    """Int [F]: the mocap frame index of each image frame (column 2 of corr_moc_img_*.txt)."""
    path = common.require_file(path, 'whitespace-separated rows, mocap frame index in column 2')
    try:
        table = np.loadtxt(path, ndmin=2)
    except ValueError as e:
        raise common.DatasetFormatError(f'{path}: not a numeric table ({e})') from None
    if table.shape[1] < 3 or len(table) == 0:
        raise common.DatasetFormatError(
            f'{path}: has shape {table.shape}, expected [frames, >=3] (column 2 = mocap frame)')
    return table[:, 2].astype(np.int64)


def load_markers(path: str | pathlib.Path) -> np.ndarray:
    """[T, 43, 3] float32 world mm (the c3d's points turned by C3D_TO_WORLD)."""
    points = read_c3d(path).points
    if points.shape[1] != N_MARKERS:
        raise common.DatasetFormatError(
            f'{path}: has {points.shape[1]} points per frame, expected {N_MARKERS} markers')
    return (points @ C3D_TO_WORLD.T).astype(np.float32)


def _is_known_missing(s, a, r, cluster) -> bool:
    return any((s, a, r) == m[:3] and m[3] in (None, cluster) for m in KNOWN_MISSING)


def convert(root, subjects: Iterable[int] | None = None,
            validation_subjects: Iterable[int] = (), clusters: Iterable[int] = CLUSTERS,
            ) -> Iterator[Pose3DExample]:
    """Yields one example per (recording, camera, image frame); see the module docstring.

    Args:
        root: the unpacked dataset (layout above).
        subjects: subject numbers (1..12) to read; default: every mocap file's subject.
        validation_subjects: subject numbers labelled 'validation' instead of 'train'.
        clusters: camera clusters (1..4) to read.
    """
    root = pathlib.Path(root)
    mocap_dir = common.require_dir(root / 'Mocap' / 'OpticalData',
                                   'the moc_s<SS>_a<AA>_r<RR>.c3d marker files')
    recordings = sorted(tuple(int(g) for g in m.groups()) for m in
                        (_MOCAP_NAME.match(p.name) for p in mocap_dir.iterdir()) if m)
    if not recordings:
        raise common.DatasetFormatError(f'{mocap_dir}: no moc_s<SS>_a<AA>_r<RR>.c3d files')
    if subjects is not None:
        wanted = set(subjects)
        recordings = [rec for rec in recordings if rec[0] in wanted]
    validation = set(validation_subjects)
    cameras = {cluster: read_cluster_cameras(root, cluster) for cluster in clusters}
    names = joints.union_names(SKELETON)
    for s, a, r in recordings:
        tag = f's{s:02d}_a{a:02d}_r{r:02d}'
        markers = load_markers(mocap_dir / f'moc_{tag}.c3d')
        corr_path = root / 'Camera' / 'Correspondences' / f'corr_moc_img_{tag}.txt'
        if not corr_path.is_file() and _is_known_missing(s, a, r, None):
            # No correspondences, so no frame count: the unit is one camera's whole recording.
            count_skipped('bmhad', 'recording missing from the release (camera recordings)',
                          sum(len(c) for c in cameras.values()))
            continue
        mocap_index = read_correspondences(corr_path)
        if mocap_index.min() < 0 or mocap_index.max() >= len(markers):
            raise common.DatasetFormatError(
                f'{corr_path}: mocap frame indices span {mocap_index.min()}..'
                f'{mocap_index.max()}, but moc_{tag}.c3d has {len(markers)} frames')
        poses = markers[mocap_index]
        for cluster, cluster_cameras in cameras.items():
            for i_cam, camera in enumerate(cluster_cameras, start=1):
                image_dir = (root / 'Camera' / f'Cluster{cluster:02d}' / f'Cam{i_cam:02d}' /
                             f'S{s:02d}' / f'A{a:02d}' / f'R{r:02d}')
                if not image_dir.is_dir() and _is_known_missing(s, a, r, cluster):
                    count_skipped('bmhad', 'recording missing from the release (camera recordings)')
                    continue
                common.require_dir(image_dir, f'the .pgm frames of {tag}, cluster {cluster}, '
                                              f'camera {i_cam}')
                coords2d = camera.world_to_image(poses.astype(np.float64))
                for i, pose in enumerate(poses):
                    image = image_dir / f'img_l{cluster:02d}_c{i_cam:02d}_{tag}_{i:05d}.pgm'
                    yield Pose3DExample(
                        image=BayerFrame(image), camera=camera.copy(), world_coords=pose,
                        joint_names=names, box=common.box_around_points(coords2d[i]),
                        dataset='bmhad', sequence=f's{s:02d}/a{a:02d}/r{r:02d}', person=0,
                        camera_id=f'l{cluster:02d}c{i_cam:02d}', frame=i,
                        split='validation' if s in validation else 'train',
                        extra={'subject': s, 'action': a, 'repetition': r,
                               'mocap_frame': int(mocap_index[i])})
