"""Raw MPI-INF-3DHP with the mask videos MuCo-style composites need, as released, with rendered
people: the training-set layout of posepile/dataset_writers/mpi_inf_3dhp.py for subjects S1..S4
(cameras CAMERAS only) plus FGmasks/video_<c>.avi (red = person, green/blue = upper/lower body)
and ChairMasks/video_<c>.avi (red dark on the chair; only S2 has a chair). Subject s is filmed
from 3000 + 800 (s - 1) mm, so depth order is S1 (nearest) .. S4 and the bodies overlap in the
image. Broken on purpose, like real data: S3/Seq1 FGmasks/video_0.avi lacks its last frame, and
S4/Seq2's last annotation row is lifted 30 m (no joint in the image)."""
from __future__ import annotations

import pathlib

import numpy as np

from posepile.dataset_writers.media import write_video
from posepile.dataset_writers.mpi_inf_3dhp import IMSHAPE, write_annot, write_calibration
from posepile.dataset_writers.people import default_camera, make_people_sequence

SUBJECTS = ('S1', 'S2', 'S3', 'S4')
CAMERAS = (0, 5)
N_FRAMES = 3
CHAIR_RGB = (250, 120, 0)


def subject_cameras(i_subject):
    return [default_camera(IMSHAPE, distance_mm=3000 + 800 * i_subject, height_mm=900,
                           yaw_deg=25.7 * i) for i in range(14)]


def chair_masks(cam, world):
    """[T, H, W] bool: a 'chair' block around the pelvis, wide enough to hide farther bodies."""
    masks = np.zeros((len(world), *IMSHAPE), bool)
    for t, pelvis in enumerate(cam.world_to_image(world[:, 4])):
        x, y = np.round(pelvis).astype(int)
        masks[t, max(y - 5, 0):y + 25, max(x - 30, 0):x + 30] = True
    return masks


def mask_frames(red, green=None, blue=None):
    """RGB uint8 [T, H, W, 3] mask frames from bool channels."""
    channels = [c if c is not None else np.zeros_like(red) for c in (red, green, blue)]
    return (np.stack(channels, -1) * 255).astype(np.uint8)


def write(root: pathlib.Path):
    """Returns truth[(subject, sequence, camera)] = {world joints [3, 28, 3] mm, camera, body
    mask frames, chair mask frames}."""
    root = pathlib.Path(root)
    truth = {}
    for i_subject, subject in enumerate(SUBJECTS):
        cams = subject_cameras(i_subject)
        for i_seq, seq in enumerate(('Seq1', 'Seq2')):
            seq_dir = root / subject / seq
            (seq_dir / 'imageSequence').mkdir(parents=True)
            people = make_people_sequence([cams[c] for c in CAMERAS], IMSHAPE, n_frames=N_FRAMES,
                                          n_joints=28, seed=10 * i_subject + i_seq,
                                          step_mm_per_frame=300.0)
            world = people[0].joints.astype(np.float64)
            annot_world = world.copy()
            if (subject, seq) == ('S4', 'Seq2'):
                annot_world[-1, :, 2] += 30000  # lifted far above every camera's view
            write_annot(seq_dir / 'annot.mat', annot_world, cams)
            write_calibration(seq_dir / 'camera.calibration', cams)
            for c, p in zip(CAMERAS, people):
                images, body = p.images.copy(), p.masks.copy()
                chair = (chair_masks(cams[c], world) if subject == 'S2'
                         else np.zeros_like(body))
                images[chair] = CHAIR_RGB
                body &= ~chair  # the chair is keyed out of FGmasks; ChairMasks has it
                rows = np.arange(IMSHAPE[0])[None, :, None]
                pelvis_y = cams[c].world_to_image(world[:, 4])[:, 1][:, None, None]
                n_mask_frames = 2 if (subject, seq, c) == ('S3', 'Seq1', 0) else N_FRAMES
                write_video(seq_dir / f'imageSequence/video_{c}.avi', images, fourcc='MJPG')
                write_video(seq_dir / f'FGmasks/video_{c}.avi',
                            mask_frames(body, body & (rows < pelvis_y), body & (rows >= pelvis_y))
                            [:n_mask_frames], fourcc='MJPG')
                write_video(seq_dir / f'ChairMasks/video_{c}.avi',
                            mask_frames(~chair, ~chair, ~chair), fourcc='MJPG')
                truth[subject, seq, c] = dict(world=world, camera=cams[c], body=body, chair=chair)
    return truth
