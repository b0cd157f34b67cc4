"""The synthetic datasets: who labels which format, with which cameras; frame generation.

Five datasets see the same kind of hidden bodies through different camera set-ups and label
different 3D skeleton formats (train and validation splits); their test splits carry ground truth
for every 3D format (the only place where all formats of the same person are known). A sixth,
'synwild', is 2D-only like COCO: in-the-wild handheld photos at all distances, heights and
fields of view, labelled with the 'syn2d' format's image points only (no 3D, no calibration),
in train and validation splits (no test split). Its image budget is separate (`num_2d`), so
adding it leaves the 3D datasets' frames, and the test split, unchanged.

Everything is deterministic given (seed, num): each (dataset, split, sequence) has its own
`SeedSequence`, so changing one part never reshuffles another.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from posepile.camera import Camera
from posepile.synthetic import body as body_lib
from posepile.synthetic import cameras as cameras_lib
from posepile.synthetic import format_weights
from posepile.synthetic import poses as poses_lib
from posepile.synthetic import render as render_lib

SPLITS = ('train', 'validation', 'test')
_SPLIT_SHARE = {'train': 0.6, 'validation': 0.15, 'test': 0.25}
# 2D-only datasets have no test split (the benchmark needs every 3D format).
_SPLIT_SHARE_2D = {'train': 0.8, 'validation': 0.2, 'test': 0.0}
# Many training bodies, so that a model meets new body proportions and heights at test time
# (the test split's 2 bodies per dataset are unchanged by this count: its pool is drawn alone).
_SUBJECTS_PER_SPLIT = {'train': 16, 'validation': 4, 'test': 2}
# In-the-wild 2D data shows many more people than a studio: more subjects per split.
_SUBJECTS_PER_SPLIT_2D = {'train': 24, 'validation': 6, 'test': 0}
FPS = 25.0


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One synthetic dataset: name, labelled formats, camera rig, share of the frames (of its
    kind's budget: `num` for 3D datasets, `num_2d` for 2D-only ones)."""
    name: str
    description: str
    formats: tuple[str, ...]
    rig: cameras_lib.CameraRig
    share: float
    sequence_frames: tuple[int, int] = (20, 50)
    occluder_prob: float = 0.25
    two_d_only: bool = False

    def split_share(self, split: str) -> float:
        return (_SPLIT_SHARE_2D if self.two_d_only else _SPLIT_SHARE)[split]

    def subjects_per_split(self, split: str) -> int:
        return (_SUBJECTS_PER_SPLIT_2D if self.two_d_only else _SUBJECTS_PER_SPLIT)[split]


DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec('synring', 'mocap studio: fixed ring of 4 cameras, markers and mocap joints',
                ('synmocap', 'synmarker'),
                cameras_lib.CameraRig('ring', 4, (4000, 5000), (1500, 2200), (50, 55), (256, 256),
                                      aim_jitter=0.03, roll_deg=0.5, off_frame_prob=0.1), 0.25,
                occluder_prob=0.1),
    DatasetSpec('synhandheld', 'outdoor handheld video, COCO-like labels',
                ('syncoco',),
                cameras_lib.CameraRig('handheld', 1, (2000, 4500), (1200, 1800), (35, 60),
                                      (320, 256), aim_jitter=0.1, roll_deg=3.0,
                                      off_frame_prob=0.4), 0.2,
                occluder_prob=0.35),
    DatasetSpec('synwide', 'wide-angle cameras with barrel distortion, head-top/neck labels',
                ('synhead',),
                cameras_lib.CameraRig('static', 2, (2000, 3500), (900, 1600), (85, 100),
                                      (240, 320), k1_range=(-0.3, -0.15), aim_jitter=0.08,
                                      off_frame_prob=0.2), 0.2),
    DatasetSpec('synsurv', 'high surveillance cameras looking down, SMPL-like labels',
                ('synsmpl',),
                cameras_lib.CameraRig('static', 2, (6000, 9000), (3000, 4500), (28, 40),
                                      (256, 256), aim_jitter=0.04), 0.15, occluder_prob=0.3),
    DatasetSpec('synlab', 'lab with 3 close cameras at varied heights, MPII-like labels',
                ('synmpii',),
                cameras_lib.CameraRig('static', 3, (2500, 3500), (500, 2500), (55, 70),
                                      (256, 256), aim_jitter=0.1, roll_deg=2.0,
                                      off_frame_prob=0.2), 0.2),
    DatasetSpec('synwild', 'in-the-wild handheld photos, 2D labels only (syn2d), uncalibrated',
                ('syn2d',),
                cameras_lib.CameraRig('handheld', 1, (2000, 8000), (400, 2600), (30, 75),
                                      (320, 320), aim_jitter=0.12, roll_deg=5.0,
                                      off_frame_prob=0.3), 1.0,
                sequence_frames=(3, 12), occluder_prob=0.4, two_d_only=True),
)
DATASET_BY_NAME: dict[str, DatasetSpec] = {d.name: d for d in DATASETS}


@dataclasses.dataclass
class Frame:
    """One rendered image of one person with all its ground truth.

    Attributes:
        dataset, split, sequence, camera_id, frame: identifiers (frame = index in the sequence).
        subject: person identity within the dataset split (same body across sequences).
        camera: the camera (world frame z up, mm).
        image: [H, W, 3] uint8 RGB.
        mask: [H, W] bool visible person pixels; box: [x, y, w, h] px of the mask.
        joints3d: format -> [J, 3] world mm, only the formats this split labels (none for a
            2D-only dataset).
        joints2d: format -> [J, 2] image px (with distortion), the labelled formats (2D-only
            datasets: NaN where the point falls outside the image, as an annotator cannot click
            there).
        occluded_fraction: share of body pixels hidden by occluders; archetype: dominant pose.
    """
    dataset: str
    split: str
    sequence: str
    camera_id: str
    frame: int
    subject: int
    camera: Camera
    image: np.ndarray
    mask: np.ndarray
    box: np.ndarray
    joints3d: dict[str, np.ndarray]
    joints2d: dict[str, np.ndarray]
    occluded_fraction: float
    archetype: str


@dataclasses.dataclass(frozen=True)
class SequencePlan:
    dataset: DatasetSpec
    split: str
    index: int
    n_frames: int  # time steps
    n_images: int  # <= n_frames * rig.n_cameras (the last time step may miss cameras)


def _budgets(num: int, two_d_only: bool) -> list[tuple[int, int, int]]:
    """(dataset index, split index, images) cells of one kind's budget of exactly `num`
    images: dataset shares times split shares, largest remainder rounding."""
    cells = [(d, s) for d in range(len(DATASETS)) for s in range(len(SPLITS))
             if DATASETS[d].two_d_only == two_d_only and DATASETS[d].split_share(SPLITS[s]) > 0]
    if num == 0 or not cells:
        return []
    exact = np.array([num * DATASETS[d].share * DATASETS[d].split_share(SPLITS[s])
                      for d, s in cells])
    exact *= num / exact.sum()
    budgets = np.floor(exact).astype(int)
    budgets[np.argsort(-(exact - budgets), kind='stable')[:num - budgets.sum()]] += 1
    return [(d, s, int(b)) for (d, s), b in zip(cells, budgets)]


def plan_sequences(num: int, seed: int, num_2d: int = 0) -> list[SequencePlan]:
    """Splits budgets of exactly `num` images (3D datasets) and `num_2d` images (2D-only
    datasets) over datasets, splits and sequences.

    Per (dataset, split) budgets follow the dataset shares within their kind and the split shares
    (60/15/25 % for 3D datasets, 80/20/0 % for 2D-only ones; largest remainder rounding); a
    multi-camera sequence whose last time step would overshoot the budget has fewer images in
    its last time step (its last cameras miss that frame).
    """
    if num < 1:
        raise ValueError(f'num must be positive, got {num}')
    if num_2d < 0:
        raise ValueError(f'num_2d must be >= 0, got {num_2d}')
    plans = []
    for d_index, s_index, budget in _budgets(num, False) + _budgets(num_2d, True):
        spec, split = DATASETS[d_index], SPLITS[s_index]
        rng = np.random.default_rng([seed, d_index, s_index, 0])
        index = 0
        while budget > 0:
            n_frames = int(rng.integers(*spec.sequence_frames))
            n_images = min(n_frames * spec.rig.n_cameras, int(budget))
            plans.append(SequencePlan(spec, split, index,
                                      int(np.ceil(n_images / spec.rig.n_cameras)), n_images))
            budget -= n_images
            index += 1
    return plans


def _subject_pool(seed: int, d_index: int, s_index: int, split: str):
    rng = np.random.default_rng([seed, d_index, s_index, 1])
    return [(body_lib.sample_body(rng), render_lib.sample_appearance(rng))
            for _ in range(DATASETS[d_index].subjects_per_split(split))]


def _ring_cameras(seed: int, d_index: int, rig: cameras_lib.CameraRig) -> list[Camera]:
    rng = np.random.default_rng([seed, d_index, 99])
    start = rng.uniform(0, 2 * np.pi)
    return [cameras_lib.sample_camera(rng, rig, (0.0, 0.0),
                                      start + 2 * np.pi * k / rig.n_cameras + rng.normal(0, 0.1))
            for k in range(rig.n_cameras)]


def generate_sequence(plan: SequencePlan, seed: int) -> Iterator[Frame]:
    """Renders all frames of one planned sequence (every camera, every time step)."""
    spec = plan.dataset
    d_index = DATASETS.index(spec)
    s_index = SPLITS.index(plan.split)
    rng = np.random.default_rng([seed, d_index, s_index, 2, plan.index])
    pool = _subject_pool(seed, d_index, s_index, plan.split)
    subject = int(rng.integers(len(pool)))
    body, appearance = pool[subject]
    motion = poses_lib.sample_motion(rng, body, plan.n_frames, FPS)
    hidden = body_lib.forward_kinematics(body, motion.pose_deg, motion.root_rot, motion.root_pos)
    formats = format_weights.FORMAT_NAMES if plan.split == 'test' else spec.formats
    joints = {f: format_weights.format_joints(f, hidden) for f in formats}
    rig = spec.rig
    if rig.kind == 'ring':
        tracks = [[cam] * plan.n_frames for cam in _ring_cameras(seed, d_index, rig)]
    elif rig.kind == 'static':
        center = motion.root_pos[:, :2].mean(axis=0)
        tracks = [[cameras_lib.sample_camera(rng, rig, center)] * plan.n_frames
                  for _ in range(rig.n_cameras)]
    elif rig.kind == 'handheld':
        tracks = [cameras_lib.handheld_track(rng, rig, motion.root_pos[:, :2])
                  for _ in range(rig.n_cameras)]
    else:
        raise ValueError(f'dataset {spec.name}: unknown camera rig kind {rig.kind!r}')
    height, width = rig.image_size
    sequence = f'seq{plan.index:03d}'
    for t in range(plan.n_frames):
        for cam_index, track in enumerate(tracks):
            if t * len(tracks) + cam_index >= plan.n_images:
                return
            camera = track[t]
            frame_rng = np.random.default_rng([seed, d_index, s_index, 3, plan.index, cam_index, t])
            background = render_lib.random_background(frame_rng, height, width)
            rendering = render_lib.render_person(hidden[t], body, appearance, camera, background,
                                                 frame_rng, spec.occluder_prob)
            joints2d = {f: camera.world_to_image(j[t]) for f, j in joints.items()}
            if spec.two_d_only:
                joints2d = {f: _inside_image(p, height, width) for f, p in joints2d.items()}
            yield Frame(
                dataset=spec.name, split=plan.split, sequence=sequence,
                camera_id=f'cam{cam_index}', frame=t, subject=subject, camera=camera,
                image=rendering.image, mask=rendering.mask,
                box=render_lib.mask_box(rendering.mask),
                joints3d={} if spec.two_d_only else {f: j[t] for f, j in joints.items()},
                joints2d=joints2d,
                occluded_fraction=rendering.occluded_fraction, archetype=motion.archetypes[t])


def _inside_image(points2d: np.ndarray, height: int, width: int) -> np.ndarray:
    """[J, 2] px with NaN for points outside the image (pixel centres 0..W-1, 0..H-1, so the
    image spans [-0.5, W - 0.5] x [-0.5, H - 0.5])."""
    inside = np.all((points2d >= -0.5) & (points2d <= np.array([width, height]) - 0.5), axis=-1)
    return np.where(inside[:, np.newaxis], points2d, np.nan)
