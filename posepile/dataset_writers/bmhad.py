"""Berkeley MHAD as released, with rendered people: Mocap/OpticalData/moc_<rec>.c3d (43
markers), Calibration/camcfg_l0<L>.yml (OpenCV FileStorage: K, Dist, PosRel) and RwTw_l0<L>.txt,
Camera/Correspondences/corr_moc_img_<rec>.txt and Camera/Cluster0<L>/Cam0<C>/.../*.pgm Bayer (GB)
frames. The cameras are distorted."""
from __future__ import annotations

import pathlib

import numpy as np
from scipy.spatial.transform import Rotation

from posepile.dataset_writers.media import write_c3d
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import bmhad

IMSHAPE = (120, 160)
DIST = np.array([-0.25, 0.1, 0.001, -0.0005])
# Mocap frames 0-3 hold the first rendered pose, 4-7 the second; image frame i shows mocap
# frame CORR[i], so each pose appears in two image frames and dedup keeps 2 of 4 per track.
MOCAP_POSE = [0, 0, 0, 0, 1, 1, 1, 1]
CORR = np.array([1, 3, 5, 7])
RECORDINGS = {'s01_a01_r01': 0, 's02_a01_r01': 1}  # name: seed
# Per cluster: the world -> cluster transform written to RwTw (arbitrary, mm).
CLUSTER_RW = [Rotation.from_rotvec([0.1 * c, -0.2, 0.3]).as_matrix() for c in range(4)]
CLUSTER_TW = [np.array([100.0 * c, -200.0, 3000.0]) for c in range(4)]


def fixture_cameras():
    """One camera per cluster, in the fixture's z-up world (the c3d frame)."""
    cams = [default_camera(IMSHAPE, distance_mm=4500, yaw_deg=yaw) for yaw in (0, 90, 180, 270)]
    for cam in cams:
        cam.distortion_coeffs = DIST.copy()
    return cams


def to_bayer_gb(rgb):
    """The raw mosaic that OpenCV's BAYER_GB2RGB demosaics: rows G R G R... / B G B G..."""
    raw = rgb[..., 1].copy()
    raw[0::2, 1::2] = rgb[0::2, 1::2, 0]
    raw[1::2, 0::2] = rgb[1::2, 0::2, 2]
    return raw


def write_calibration(root, cams):
    import cv2
    M = bmhad.C3D_TO_WORLD
    (root / 'Calibration').mkdir(parents=True, exist_ok=True)
    for c, cam in enumerate(cams):
        cluster = c + 1
        Rw, Tw = CLUSTER_RW[c], CLUSTER_TW[c]
        (root / f'Calibration/RwTw_l{cluster:02d}.txt').write_text(
            'Rw=' + ' '.join(f'{v:.12g}' for v in Rw.reshape(-1)) + ' \n'
            + 'Tw=' + ' '.join(f'{v:.12g}' for v in Tw) + ' \n')
        # The camera in the calibration's world (M-turned c3d space): R M, centre M c.
        R = cam.R @ M
        centre = M @ cam.t
        translation = -R @ centre
        R_rel = R @ Rw.T
        t_rel = translation - R_rel @ Tw
        pos_rel = np.concatenate([t_rel, Rotation.from_matrix(R_rel).as_rotvec()])
        fs = cv2.FileStorage(str(root / f'Calibration/camcfg_l{cluster:02d}.yml'),
                             cv2.FILE_STORAGE_WRITE)
        fs.write('Number of cameras', 1)
        fs.startWriteStruct('Camera_1', cv2.FileNode_MAP)
        fs.write('K', cam.intrinsic_matrix)
        fs.write('Dist', DIST.reshape(1, 4))
        fs.write('PosRel', pos_rel.reshape(1, 6))
        fs.endWriteStruct()
        fs.release()


def write_recording(root, tag, seed, cams):
    import cv2
    seqs = make_people_sequence(cams, IMSHAPE, n_frames=2, n_joints=43, seed=seed,
                                step_mm_per_frame=300.0)
    markers = seqs[0].joints[MOCAP_POSE]
    write_c3d(root / f'Mocap/OpticalData/moc_{tag}.c3d', markers.astype(np.float64),
              [f'M{i}' for i in range(43)], rate=480.0)
    corr_dir = root / 'Camera/Correspondences'
    corr_dir.mkdir(parents=True, exist_ok=True)
    rows = np.stack([np.arange(len(CORR)), np.arange(len(CORR)) / 22.0, CORR], axis=1)
    np.savetxt(corr_dir / f'corr_moc_img_{tag}.txt', rows, fmt='%g')
    s, a, r = tag[1:3], tag[5:7], tag[9:11]
    images, masks = [], []
    for c, seq in enumerate(seqs):
        cluster = c + 1
        image_dir = root / f'Camera/Cluster{cluster:02d}/Cam01/S{s}/A{a}/R{r}'
        image_dir.mkdir(parents=True, exist_ok=True)
        shown = [MOCAP_POSE[m] for m in CORR]
        for i, frame in enumerate(shown):
            cv2.imwrite(str(image_dir / f'img_l{cluster:02d}_c01_{tag}_{i:05d}.pgm'),
                        to_bayer_gb(seq.images[frame]))
        images.append(seq.images[shown])
        masks.append(seq.masks[shown])
    return seqs[0].joints[[MOCAP_POSE[m] for m in CORR]], images, masks


def write(root: pathlib.Path):
    cams = fixture_cameras()
    write_calibration(root, cams)
    truth = {tag: write_recording(root, tag, seed, cams) for tag, seed in RECORDINGS.items()}
    # A recording the release lacks images for (s04 a08 r05): must be skipped, not an error.
    write_c3d(root / 'Mocap/OpticalData/moc_s04_a08_r05.c3d',
              np.zeros((2, 43, 3)), [f'M{i}' for i in range(43)])
    return cams, truth
