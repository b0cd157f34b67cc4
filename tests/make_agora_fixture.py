"""Writes the committed AGORA and pandas-pickle fixtures under tests/data/ (not a test itself).

The suite needs no pandas: the DataFrame pickles are written once by real pandas and committed,
together with the known arrays they were written from, so the tests can check every number.

Two stages, both run from the repository root:

    # 1. Rendered people, their cameras and joints (the repository's venv: numpy, OpenCV):
    .venv/bin/python tests/make_agora_fixture.py arrays
    #    -> tests/data/agora/dataset/{train_0,train_1,validation}/*.png, truth.npz, rows.json
    # 2. The DataFrame pickles, from rows.json + truth.npz, by each pandas version in a scratch
    #    venv OUTSIDE the repository (needs only pandas and numpy):
    python3.11 -m venv /tmp/pd1 && /tmp/pd1/bin/pip install pandas==1.5.3 'numpy<2'
    python3.11 -m venv /tmp/pd2 && /tmp/pd2/bin/pip install pandas==2.3.3 numpy==2.4.6
    python3.11 -m venv /tmp/pd3 && /tmp/pd3/bin/pip install pandas==3.1.1 numpy==2.4.6
    /tmp/pd1/bin/python tests/make_agora_fixture.py frames
    /tmp/pd2/bin/python tests/make_agora_fixture.py frames
    /tmp/pd3/bin/python tests/make_agora_fixture.py frames

Which pandas writes what (a `frames` run writes the files of its own major version):
    pandas 1.5.3, BlockManager pickled the way pandas 1.1/1.2 did (NEWOBJ + the '0.14.1' state
        tuple; AGORA's 2021 files were written so): dataset/SMPLX/train_0_withjv.pkl,
        pandas_pickles/table_pandas1.1-layout.pkl
    pandas 1.5.3 as is: dataset/SMPL/train_0_withjv.pkl (rows in reverse order, so the
        converter must pair rows by imgPath), pandas_pickles/table_pandas1.5.3.pkl and
        table_pandas1.5.3_filtered.pkl (an Int64Index of rows 0 and 2)
    pandas 2.3.3: dataset/{SMPL,SMPLX}/{train_1,validation_0}_withjv.pkl, bad/*.pkl,
        pandas_pickles/table_pandas2.3.3_p{5,4,2,1}.pkl (pickle protocols 5, 4, 2 and 1)
    pandas 3.1.1: pandas_pickles/table_pandas3.1.1.pkl (string columns: must be refused)

The AGORA conventions the fixture follows are those of the official agora_evaluation code
(projection.py): see docs/datasets/agora.md. This script implements them on its own (scipy
rotations), independently of posepile/datasets/agora.py, so the test compares two codings.
"""
from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

DATA = pathlib.Path(__file__).resolve().parent / 'data'
AGORA = DATA / 'agora'
DATASET = AGORA / 'dataset'
TABLES = DATA / 'pandas_pickles'
IMSHAPE = (90, 160)  # (H, W): 16:9 like AGORA's 3840x2160 and 1280x720
N_SMPLX, N_SMPL = 127, 45  # joints per person in AGORA's SMPL-X / SMPL gt_joints_3d
SENSOR_MM = (36.0, 20.25)  # AGORA's virtual sensor (width, height)


# ------------------------------------------------------------------------- the decoder's table
def known_table() -> dict[str, list]:
    """The small table every pandas_pickles/table_*.pkl holds (columns in this order), with
    the kinds of columns AGORA's frames have: strings, floats (with a NaN), ints, bools, and
    object cells holding lists of floats, bools, strings and numpy arrays."""
    rng = np.random.default_rng(7)
    n = 3
    return {
        'imgPath': [f'ag_trainset_scene_5_10_{i:05d}.png' for i in range(n)],
        'camX': [0.5, np.nan, -2.25],
        'count': [3, 1, 2],
        'flag': [True, False, True],
        'occlusion': [[1.5, 80.25, 3.0], [0.0], [12.0, 95.5]],
        'kid': [[False, True, False], [True], [False, False]],
        'gender': [['male', 'female', 'male'], ['female'], ['male', 'female']],
        'gt_joints_3d': [[rng.normal(size=(N_SMPLX, 3)) for _ in range(k)] for k in (3, 1, 2)],
        'gt_verts': [[rng.normal(size=(5, 3)).astype(np.float32) for _ in range(k)]
                     for k in (3, 1, 2)],
    }


# ------------------------------------------------------------------ AGORA's camera conventions
def agora_camera_setup(img_name: str, cam_x: float, cam_y: float, cam_z: float, cam_yaw: float):
    """(focal mm, camera position in Unreal cm, yaw deg, pitch deg, ground offset m), by the
    scene rules of agora_evaluation's projection.project_2d."""
    fixed = [('hdri', 50, (0, 0, 170), 0, 0), ('cam00', 18, (400, -275, 265), 135, 30),
             ('cam01', 18, (400, 225, 265), -135, 30), ('cam02', 18, (-490, 170, 265), -45, 30),
             ('cam03', 18, (-490, -275, 265), 45, 30), ('ag2', 28, (0, 0, 170), 0, 15)]
    for key, focal, position, yaw, pitch in fixed:
        if key in img_name:
            return focal, np.array(position, float), yaw, pitch, np.zeros(3)
    return 28, np.array([cam_x, cam_y, cam_z], float), cam_yaw, 0, np.array([0, -1.7, 0])


def agora_extrinsics(img_name, cam_x, cam_y, cam_z, cam_yaw):
    """(R world->camera, optical centre in metres) in AGORA's OpenCV-axis world, the way
    projection.project2d transforms points: j_cam = R_pitch @ R_yaw @ (j - cam)."""
    from scipy.spatial.transform import Rotation
    _, position_cm, yaw, pitch, ground = agora_camera_setup(img_name, cam_x, cam_y, cam_z,
                                                            cam_yaw)
    unreal_to_cv = np.roll(position_cm / 100, 2) * [1, -1, 1]  # x->y, y->z, z->x, flip y
    centre = unreal_to_cv + ground
    rot_yaw = Rotation.from_rotvec([0, np.deg2rad(-yaw), 0]).as_matrix()
    rot_pitch = Rotation.from_rotvec([np.deg2rad(pitch), 0, 0]).as_matrix()
    return rot_pitch @ rot_yaw, centre


def agora_intrinsics(img_name, width, height, corner_convention=True):
    """K [3, 3] of agora_evaluation at an image size: f_px = f_mm / sensor_mm * size, principal
    point (W/2, H/2) in the pixel-corner convention (AGORA's gt_joints_2d), or minus 0.5 in
    the pixel-centre convention of rendered pixels."""
    focal = agora_camera_setup(img_name, 0, 0, 0, 0)[0]
    shift = 0.0 if corner_convention else 0.5
    return np.array([[focal / SENSOR_MM[0] * width, 0, width / 2 - shift],
                     [0, focal / SENSOR_MM[1] * height, height / 2 - shift], [0, 0, 1]])


# --------------------------------------------------------------------------- the AGORA fixture
# (section, imgPath as in the frame, file name on disk, camX, camY, camZ, camYaw, persons).
# Person: (id, placement (forward m, right m) from the camera, kid, gender, occlusion, isValid).
# Rows 0 and 1 are the same scene seen by two of the archviz cameras (same people, same id).
ROWS = [
    ('train_0', 'ag_trainset_renderpeople_bfh_archviz_5_10_cam02_00001.png', None,
     0.0, 0.0, 0.0, 0.0,
     [('a', 'scene', False, 'male', 12.5, True), ('b', 'scene', True, 'female', 30.0, True)]),
    ('train_0', 'ag_trainset_renderpeople_bfh_archviz_5_10_cam03_00001.png', None,
     0.0, 0.0, 0.0, 0.0,
     [('a', 'scene', False, 'male', 5.0, True), ('b', 'scene', True, 'female', 40.0, True)]),
    ('train_1', 'ag_trainset_3dpeople_body_construction_5_15_00004.png', None,
     150.0, -320.0, 0.0, 20.0,
     [('c', (6.0, -1.3), False, 'female', 80.0, True),  # dropped: occlusion > 75
      ('d', (7.0, 0.0), False, 'male', 95.0, False),  # dropped: isValid False
      ('e', (5.2, 1.0), False, 'male', 10.0, True),
      ('f', (3.0, 9.0), False, 'female', 60.0, True)]),  # dropped: outside the image
    ('validation_0', 'ag_validationset_renderpeople_bfh_hdri_50mm_5_10_00002.png',
     'ag_validationset_renderpeople_bfh_hdri_50mm_5_10_00002_1280x720.png',
     0.0, 0.0, 0.0, 0.0,
     [('g', (9.8, -0.5), False, 'female', 0.0, True), ('h', (9.0, 0.5), True, 'male', 50.0, True)]),
]
# Ground points (AGORA world, metres) of the two people the archviz cameras 02 and 03 share:
# both cameras look at about (-0.52, 0, -2.67).
SCENE_POINTS = {'a': (-0.9, 0.0, -2.5), 'b': (-0.2, 0.0, -2.9)}
# z-up body frame (posepile.synthetic) -> AGORA's y-down world: x -> x, up -> -y, y -> z.
ZUP_TO_AGORA = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def _hidden_people(rng):
    """{person id: (hidden points [N, 3] in a z-up frame with the feet at z = 0 under the
    origin, body, appearance)} for every person of ROWS."""
    from posepile.synthetic import body as body_lib, poses as poses_lib, render as render_lib
    people = {}
    for row in ROWS:
        for pid, _, kid, *_ in row[-1]:
            if pid in people:
                continue
            body = body_lib.sample_body(rng, (1050, 1300) if kid else (1550, 1900))
            motion = poses_lib.sample_motion(rng, body, 1)
            root_pos = motion.root_pos * [0, 0, 1]
            hidden = body_lib.forward_kinematics(body, motion.pose_deg, motion.root_rot,
                                                 root_pos)[0]
            people[pid] = (hidden, body, render_lib.sample_appearance(rng))
    return people


def write_arrays():
    """Stage 1: images, truth.npz and rows.json."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import cv2
    from posepile.camera import Camera
    from posepile.synthetic import render as render_lib
    rng = np.random.default_rng(2024)
    height, width = IMSHAPE
    people = _hidden_people(rng)
    n_hidden = len(next(iter(people.values()))[0])
    rows_smplx = np.arange(N_SMPLX) % n_hidden  # every row a point of the rendered body
    rows_smpl = (np.arange(N_SMPL) + 5) % n_hidden
    truth = {k: [] for k in ('smplx_cam_m', 'smpl_cam_m', 'smplx_2d_4k', 'smpl_2d_4k',
                             'smplx_world_mm', 'smpl_world_mm', 'visible_mask')}
    cams = {'R': [], 't_mm': [], 'K': []}
    rows_json = []
    for section, img_path, file_name, cam_x, cam_y, cam_z, cam_yaw, persons in ROWS:
        rot, centre_m = agora_extrinsics(img_path, cam_x, cam_y, cam_z, cam_yaw)
        camera = Camera(centre_m * 1000, rot, agora_intrinsics(img_path, width, height, False),
                        world_up=(0, -1, 0))
        forward, right = rot.T @ [0, 0, 1.0], rot.T @ [1.0, 0, 0]
        forward, right = forward * [1, 0, 1], right * [1, 0, 1]
        forward, right = forward / np.linalg.norm(forward), right / np.linalg.norm(right)
        k_4k = agora_intrinsics(img_path, 3840, 2160)
        placed = []
        for pid, where, kid, gender, occlusion, valid in persons:
            hidden, body, appearance = people[pid]
            if where == 'scene':
                ground = np.array(SCENE_POINTS[pid])
            else:
                ground = centre_m * [1, 0, 1] + where[0] * forward + where[1] * right
            world_mm = hidden @ ZUP_TO_AGORA.T + ground * 1000
            placed.append((np.linalg.norm(world_mm[0] - camera.t), world_mm, body, appearance))
        # Far to near, so nearer people cover farther ones; a person's visible mask loses the
        # pixels later (nearer) renders take.
        image = render_lib.random_background(rng, height, width)
        masks = [None] * len(placed)
        for i in np.argsort([-p[0] for p in placed]):
            _, world_mm, body, appearance = placed[i]
            rendering = render_lib.render_person(world_mm, body, appearance, camera, image, rng,
                                                 occluder_prob=0.0)
            image = rendering.image
            for j in range(len(masks)):
                if masks[j] is not None:
                    masks[j] &= ~rendering.mask
            masks[i] = rendering.mask.copy()
        out_dir = DATASET / ('validation' if section.startswith('validation') else section)
        out_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out_dir / (file_name or img_path)), image[..., ::-1])
        row_persons = []
        for (pid, where, kid, gender, occlusion, valid), (_, world_mm, _, _), mask in zip(
                persons, placed, masks):
            for model, rows in (('smplx', rows_smplx), ('smpl', rows_smpl)):
                points_mm = world_mm[rows]
                cam_m = camera.world_to_camera(points_mm) / 1000
                projected = cam_m @ k_4k.T
                truth[f'{model}_cam_m'].append(cam_m)
                truth[f'{model}_2d_4k'].append(projected[:, :2] / projected[:, 2:])
                truth[f'{model}_world_mm'].append(points_mm)
            truth['visible_mask'].append(mask)
            unreal_cm = (world_mm[0] / 10) @ np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]]).T
            row_persons.append({
                'index': len(truth['visible_mask']) - 1, 'id': pid, 'kid': kid,
                'gender': gender, 'occlusion': occlusion, 'isValid': valid,
                'age': '5-10' if kid else '31-50', 'ethnicity': 'asian',
                'X': float(unreal_cm[0]), 'Y': float(unreal_cm[1]), 'Z': 0.0,
                'Yaw': float(rng.uniform(-180, 180)),
                'gt_path_smpl': f'smpl_gt/{pid}/{pid}_0.obj',
                'gt_path_smplx': f'smplx_gt/{pid}/{pid}_0.obj'})
        cams['R'].append(camera.R)
        cams['t_mm'].append(camera.t)
        cams['K'].append(camera.intrinsic_matrix)
        rows_json.append({'section': section, 'imgPath': img_path,
                          'file': file_name or img_path, 'camX': cam_x, 'camY': cam_y,
                          'camZ': cam_z, 'camYaw': cam_yaw, 'persons': row_persons})
    np.savez_compressed(AGORA / 'truth.npz', **{k: np.stack(v) for k, v in truth.items()},
                        **{f'camera_{k}': np.stack(v) for k, v in cams.items()})
    (AGORA / 'rows.json').write_text(json.dumps(rows_json, indent=1))


# ----------------------------------------------------------------------------- DataFrame pickles
_PERSON_COLUMNS = ('X', 'Y', 'Z', 'Yaw')
_CAMERA_COLUMNS = ('camX', 'camY', 'camZ', 'camYaw')
_META_COLUMNS = ('gender', 'kid', 'occlusion', 'isValid', 'age', 'ethnicity', 'gt_path_smpl',
                 'gt_path_smplx')


def agora_frame(pd, rows, truth, model, edit=None):
    """The DataFrame of `rows` with AGORA's columns; `edit(column, row, values)` may alter a
    column's per-row list (for the broken variants)."""
    rng = np.random.default_rng(len(rows))
    columns = {'imgPath': [r['imgPath'] for r in rows]}
    for name in _PERSON_COLUMNS:
        columns[name] = [[p[name] for p in r['persons']] for r in rows]
    for name in _CAMERA_COLUMNS:
        columns[name] = [float(r[name]) for r in rows]
    for name in _META_COLUMNS:
        columns[name] = [[p[name] for p in r['persons']] for r in rows]
    columns['gt_joints_2d'] = [[truth[f'{model}_2d_4k'][p['index']] for p in r['persons']]
                               for r in rows]
    columns['gt_joints_3d'] = [[truth[f'{model}_cam_m'][p['index']] for p in r['persons']]
                               for r in rows]
    # Real gt_verts hold 10475 (SMPL-X) or 6890 (SMPL) vertices; a few keep the fixture small.
    columns['gt_verts'] = [[rng.normal(size=(8, 3)) for _ in r['persons']] for r in rows]
    if edit is not None:
        for name in list(columns):
            columns[name] = [edit(name, i, v) for i, v in enumerate(columns[name])]
        columns = {k: v for k, v in columns.items() if v[0] is not _DROP}
    return pd.DataFrame(columns)


_DROP = object()


def _legacy_manager_pickling():
    """Makes pandas 1.5.3 pickle its BlockManager as pandas 1.1/1.2 did: NEWOBJ, then the state
    (axes, block values, block items, {'0.14.1': {'axes', 'blocks': [{'values', 'mgr_locs'}]}})
    of pandas 1.1's BlockManager.__getstate__."""
    import copyreg
    from pandas.core.internals.managers import BlockManager

    def legacy_state(mgr):
        axes = list(mgr.axes)
        extra = {'0.14.1': {'axes': axes, 'blocks': [
            {'values': b.values, 'mgr_locs': b.mgr_locs.indexer} for b in mgr.blocks]}}
        return (axes, [b.values for b in mgr.blocks],
                [mgr.items[b.mgr_locs.indexer] for b in mgr.blocks], extra)

    original = BlockManager.__reduce__
    BlockManager.__reduce__ = lambda self: (copyreg.__newobj__, (type(self),), legacy_state(self))
    return lambda: setattr(BlockManager, '__reduce__', original)


def write_frames():
    """Stage 2: the pickles of the running pandas version (module docstring)."""
    import pandas as pd
    major = int(pd.__version__.split('.')[0])
    rows = json.loads((AGORA / 'rows.json').read_text())
    with np.load(AGORA / 'truth.npz') as f:
        truth = dict(f)
    by_section = {}
    for r in rows:
        by_section.setdefault(r['section'], []).append(r)
    for d in (DATASET / 'SMPL', DATASET / 'SMPLX', AGORA / 'bad', TABLES):
        d.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(known_table())

    def write(df, path, protocol=5):
        df.to_pickle(path, protocol=protocol)
        check = pd.read_pickle(path)  # pandas itself must read it back identically
        assert list(check.columns) == list(df.columns) and len(check) == len(df), path

    if major == 1:
        write(agora_frame(pd, by_section['train_0'][::-1], truth, 'smpl'),
              DATASET / 'SMPL/train_0_withjv.pkl')
        write(table, TABLES / 'table_pandas1.5.3.pkl')
        write(table.iloc[[0, 2]], TABLES / 'table_pandas1.5.3_filtered.pkl')
        restore = _legacy_manager_pickling()
        try:
            write(agora_frame(pd, by_section['train_0'], truth, 'smplx'),
                  DATASET / 'SMPLX/train_0_withjv.pkl')
            write(table, TABLES / 'table_pandas1.1-layout.pkl')
        finally:
            restore()
    elif major == 2:
        for section in ('train_1', 'validation_0'):
            for model, folder in (('smpl', 'SMPL'), ('smplx', 'SMPLX')):
                write(agora_frame(pd, by_section[section], truth, model),
                      DATASET / f'{folder}/{section}_withjv.pkl')
        for protocol in (5, 4, 2, 1):
            write(table, TABLES / f'table_pandas2.3.3_p{protocol}.pkl', protocol)
        write_broken_frames(pd, by_section['train_1'], truth, write)
    else:
        write(table, TABLES / f'table_pandas{pd.__version__}.pkl')


def write_broken_frames(pd, rows, truth, write):
    """bad/: SMPL-X frames of train_1 with one defect each (the tests swap them in)."""
    def bad_shape(name, i, values):
        if name == 'gt_joints_3d':
            return [v[:, :2] if k == 2 else v for k, v in enumerate(values)]
        return values

    def no_joints(name, i, values):
        return _DROP if name == 'gt_joints_3d' else values

    def wrong_focal(name, i, values):  # 2D as if the lens were 35 mm instead of 28 mm
        if name == 'gt_joints_2d':
            return [(v - [1920, 1080]) * 35 / 28 + [1920, 1080] for v in values]
        return values

    def short_list(name, i, values):  # one person fewer in 'occlusion' than in the joints
        return values[:-1] if name == 'occlusion' else values

    for name, edit in (('bad_shape', bad_shape), ('no_joints3d', no_joints),
                       ('wrong_focal', wrong_focal), ('short_list', short_list)):
        write(agora_frame(pd, rows, truth, 'smplx', edit), AGORA / f'bad/SMPLX_train_1_{name}.pkl')


if __name__ == '__main__':
    if sys.argv[1:] == ['arrays']:
        write_arrays()
    elif sys.argv[1:] == ['frames']:
        write_frames()
    else:
        sys.exit(__doc__)
