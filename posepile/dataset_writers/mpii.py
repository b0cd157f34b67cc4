"""MPII Human Pose as released, with rendered people:
mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat (the RELEASE struct: annolist with annorect
person rectangles, 16 annopoints 1-based, scale, objpos; img_train; single_person; act) and
images/<name>.jpg."""
from __future__ import annotations

import pathlib

import numpy as np
import scipy.io

from posepile.dataset_writers.media import write_jpeg
from posepile.dataset_writers.people import default_camera, make_people_sequence
from posepile.datasets import mpii

IMSHAPE = (120, 160)


def struct_array(records):
    """MATLAB 1xN struct array (fields of the first record; absent ones are empty arrays)."""
    fields = list(dict.fromkeys(k for r in records for k in r))
    array = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for i, record in enumerate(records):
        for field in fields:
            array[0, i][field] = record.get(field, np.zeros((0, 0)))
    return array


def person_rect(points2d_0based, visible, scale, objpos_0based):
    points = [{'x': float(x + 1), 'y': float(y + 1), 'id': j, 'is_visible': v}
              for j, ((x, y), v) in enumerate(zip(points2d_0based, visible)) if v is not None]
    return {'x1': 1.0, 'y1': 1.0, 'x2': 9.0, 'y2': 9.0,
            'annopoints': {'point': struct_array(points)}, 'scale': scale,
            'objpos': {'x': objpos_0based[0] + 1, 'y': objpos_0based[1] + 1}}


def write_release(path, annolist, img_train, single_person, acts):
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = np.empty((len(single_person), 1), dtype=object)
    for i, s in enumerate(single_person):
        cells[i, 0] = np.asarray(s, np.float64).reshape(-1, 1)
    release = {'annolist': struct_array(annolist), 'img_train': np.asarray([img_train], float),
               'version': '12', 'single_person': cells,
               'act': struct_array(acts).T, 'video_list': np.zeros((0, 0))}
    scipy.io.savemat(str(path), {'RELEASE': release}, do_compression=True)


def write(root: pathlib.Path):
    root = pathlib.Path(root)
    cam = default_camera(IMSHAPE, distance_mm=3500)
    people = make_people_sequence([cam], IMSHAPE, n_frames=3, n_joints=16, seed=4)[0]
    visible = [1] * 16
    visible[5], visible[9] = None, 0  # joint 5 unannotated, joint 9 annotated but not visible
    annolist, truth = [], {}
    for frame in range(3):
        name = f'{frame + 1:09d}.jpg'
        write_jpeg(root / 'images' / name, people.images[frame])
        points = np.round(cam.world_to_image(people.joints[frame]))
        objpos = np.round(points.mean(0))
        rects = [person_rect(points, visible, 0.4 + 0.1 * frame, objpos)]
        if frame == 1:  # a second person with only a head box (no joints): skipped
            rects.append({'x1': 3.0, 'y1': 3.0, 'x2': 7.0, 'y2': 7.0})
        annolist.append({'image': {'name': name}, 'annorect': struct_array(rects),
                         'frame_sec': np.zeros((0, 0)), 'vididx': np.zeros((0, 0))})
        truth[name] = (points, people.images[frame], people.masks[frame], 0.4 + 0.1 * frame,
                       objpos)
    # A test image (img_train = 0) with joints would still be skipped: no public test labels.
    annolist.append(dict(annolist[0], image={'name': '000000001.jpg'}))
    acts = [{'act_name': 'walking', 'cat_name': 'locomotion', 'act_id': 1}] * 4
    write_release(root / 'mpii_human_pose_v1_u12_2' / mpii.MAT_NAME, annolist, [1, 1, 1, 0],
                  [[1], [1], [], [1]], acts)
    return truth, visible
