"""Human3.6M as released, with rendered people: <S>/MyPoseFeatures/D3_Positions/<Action>.cdf
(world mm, 32 joints, the training converter's), <S>/MyPoseFeatures/D3_Positions_mono/
<Action>.<camera>.cdf (camera frame, the test protocol's), <S>/Videos/<Action>.<camera>.mp4 and
cameras.h5 in the 3d-pose-baseline layout."""
from __future__ import annotations

import pathlib

import h5py
import numpy as np
from cdflib.cdfwrite import CDF

from posepile.camera import h36m_distortion_to_opencv
from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import h36m

IMSHAPE = (120, 160)
# Realistic-magnitude H36M lens coefficients (of the order of the released S1 camera 1).
K_RADIAL = np.array([-0.207, 0.248, -0.0031])
P_TANGENTIAL = np.array([-0.00095, -0.0013])
# Pose rows of the training files: each rendered frame appears twice, so dedup keeps 2 of 4 per
# track.
FRAME_OF_ROW = [0, 0, 1, 1]
TRAINING_SUBJECTS = ('S1', 'S5', 'S9')
# Test-set files per subject: 'Greeting' of S9 is one of the three sequences whose released GT is
# 200 mm off in world x.
TEST_STEMS = {'S9': ('Directions 1.54138969', 'Walking 1.58860488', 'Greeting.55011271'),
              'S11': ('Walking 1.60457274',)}
TEST_N_FRAMES = 5
S9_SHIFT = np.array([200.0, 0, 0])  # world mm: what the released S9 files add to the truth
# The S9 actions whose released ground truth carries S9_SHIFT (known from the release's errata).
S9_SHIFTED_ACTIONS = ('SittingDown 1', 'Waiting 1', 'Greeting')


def fixture_cameras():
    """The four cameras (ids h36m.CAMERA_IDS), with H36M-style lens distortion."""
    cams = [default_camera(IMSHAPE, distance_mm=4500, yaw_deg=yaw) for yaw in (20, 110, 200, 290)]
    for cam in cams:
        cam.distortion_coeffs = h36m_distortion_to_opencv(K_RADIAL, P_TANGENTIAL)
    return cams


def write_cameras_h5(path, subjects, cams):
    """3d-pose-baseline layout: R stored transposed, T = optical centre, column vectors."""
    with h5py.File(path, 'w') as f:
        for s in subjects:
            for i, (cam, cam_id) in enumerate(zip(cams, h36m.CAMERA_IDS), start=1):
                g = f.create_group(f'subject{s}/camera{i}')
                g['R'] = cam.R.T
                g['T'] = cam.t.reshape(3, 1)
                K = cam.intrinsic_matrix
                g['f'] = np.array([[K[0, 0]], [K[1, 1]]])
                g['c'] = np.array([[K[0, 2]], [K[1, 2]]])
                g['k'] = K_RADIAL.reshape(3, 1)
                g['p'] = P_TANGENTIAL.reshape(2, 1)
                g['Name'] = np.array([ord(c) for c in cam_id], np.uint8)


def write_pose_cdf(path, poses):
    """A D3_Positions file: zVariable 'Pose', one record of [F, 96] floats (world mm)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cdf = CDF(str(path), delete=True)
    t, n = poses.shape[:2]
    cdf.write_var({'Variable': 'Pose', 'Data_Type': CDF.CDF_FLOAT, 'Num_Elements': 1,
                   'Rec_Vary': True, 'Dim_Sizes': [t, n]},
                  var_data=poses.reshape(1, t, n).astype(np.float32))
    cdf.close()


def write_mono_pose_cdf(path, poses32):
    """A D3_Positions_mono file: zVariable 'Pose', one record of [F, 96] doubles (camera mm)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cdf = CDF(str(path), delete=True)
    cdf.write_var({'Variable': 'Pose', 'Data_Type': CDF.CDF_DOUBLE, 'Num_Elements': 1,
                   'Rec_Vary': True, 'Dim_Sizes': [len(poses32), 96]},
                  var_data=np.asarray(poses32, np.float64).reshape(1, len(poses32), 96))
    cdf.close()


def write(root: pathlib.Path, subjects=TRAINING_SUBJECTS):
    """The training layout (D3_Positions, videos, cameras.h5) of `subjects`, 'Directions 1'
    each, two rendered frames in four pose rows (FRAME_OF_ROW). Returns (cameras, truth):
    truth[subject] = (poses [4, 32, 3] world mm, images per camera, masks per camera)."""
    root = pathlib.Path(root)
    cams = fixture_cameras()
    truth = {}
    for seed, subject in enumerate(subjects):
        seqs = make_people_sequence(cams, IMSHAPE, n_frames=2, n_joints=32, seed=seed,
                                    step_mm_per_frame=300.0)
        poses = seqs[0].joints[FRAME_OF_ROW]
        write_pose_cdf(root / subject / 'MyPoseFeatures/D3_Positions/Directions 1.cdf',
                       poses.reshape(len(FRAME_OF_ROW), -1))
        for cam_id, seq in zip(h36m.CAMERA_IDS, seqs):
            write_video(root / subject / f'Videos/Directions 1.{cam_id}.mp4',
                        seq.images[FRAME_OF_ROW])
        # A video without a pose file, like the released '_ALL' videos: must be ignored.
        write_video(root / subject / f'Videos/_ALL 1.{h36m.CAMERA_IDS[0]}.mp4', seqs[0].images)
        truth[subject] = (poses, [s.images[FRAME_OF_ROW] for s in seqs],
                          [s.masks[FRAME_OF_ROW] for s in seqs])
    write_cameras_h5(root / 'cameras.h5', [int(s[1:]) for s in subjects], cams)
    return cams, truth


def write_test_set(root: pathlib.Path, stems=None, n_frames: int = TEST_N_FRAMES):
    """The test protocol's layout (D3_Positions_mono, videos, cameras.h5) of the subjects and
    files in `stems` ({subject: file stems '<Action>.<camera id>'}; default TEST_STEMS), one
    person walking for `n_frames` frames each; the S9 files of S9_SHIFTED_ACTIONS carry the
    release's S9_SHIFT. Returns {'<S>/<stem>': (camera, PeopleSequence)}."""
    root = pathlib.Path(root)
    stems = TEST_STEMS if stems is None else stems
    cams = fixture_cameras()
    write_cameras_h5(root / 'cameras.h5', [int(s[1:]) for s in stems], cams)
    cam_of_id = dict(zip(h36m.CAMERA_IDS, cams))
    rendered = {}
    seed = 0
    for subject, subject_stems in stems.items():
        for stem in subject_stems:
            action, _, cam_id = stem.rpartition('.')
            cam = cam_of_id[cam_id]
            seq = make_people_sequence([cam], IMSHAPE, n_frames=n_frames, n_joints=32,
                                       seed=seed, step_mm_per_frame=150.0)[0]
            seed += 1
            camera_frame = cam.world_to_camera(seq.joints.astype(np.float64))
            if subject == 'S9' and action in S9_SHIFTED_ACTIONS:
                camera_frame = camera_frame + cam.R @ S9_SHIFT
            write_mono_pose_cdf(
                root / subject / 'MyPoseFeatures' / 'D3_Positions_mono' / f'{stem}.cdf',
                camera_frame)
            write_video(root / subject / 'Videos' / f'{stem}.mp4', seq.images)
            rendered[f'{subject}/{stem}'] = (cam, seq)
    return rendered
