"""Writes the synthetic world to disk in the layout of `raw_format` (the CLI's library half)."""
from __future__ import annotations

import pathlib

from tqdm import tqdm

from posepile.atomic_io import write_bytes_atomic
from posepile.synthetic import format_weights
from posepile.synthetic import raw_format
from posepile.synthetic import world
from posepile.synthetic.formats import SYNTHETIC_2D_SKELETONS, SYNTHETIC_SKELETONS


def write_world(out_dir: str | pathlib.Path, num: int, seed: int, progress: bool = True,
                num_2d: int = 0) -> int:
    """Renders `num` images of the 3D datasets (all splits) and `num_2d` images of the 2D-only
    datasets with `seed` into `out_dir`.

    Deterministic: the same (num, num_2d, seed) gives byte-identical files, and the 3D
    datasets' files do not depend on num_2d. Returns the number of images.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plans = world.plan_sequences(num, seed, num_2d)
    total = sum(p.n_images for p in plans)
    skeletons = {**SYNTHETIC_SKELETONS, **SYNTHETIC_2D_SKELETONS}
    joint_names = {f: list(names) for f, (names, _) in skeletons.items()}
    datasets = [spec for spec in world.DATASETS if num_2d or not spec.two_d_only]
    for spec in datasets:
        formats = list(spec.formats) if spec.two_d_only else list(format_weights.FORMAT_NAMES)
        raw_format.write_json_compact(out / spec.name / 'info.json', {
            'name': spec.name, 'description': spec.description,
            'labelled_formats': list(spec.formats),
            'test_formats': [] if spec.two_d_only else list(format_weights.FORMAT_NAMES),
            'two_d_only': spec.two_d_only,
            'skeletons': {f: {'joints': joint_names[f], 'bones': skeletons[f][1]}
                          for f in formats},
            'image_size': list(spec.rig.image_size), 'rig': spec.rig.kind, 'fps': world.FPS})
    written = 0
    with tqdm(total=total, desc='synthetic world', unit='img', disable=not progress) as bar:
        for plan in plans:
            dataset_dir = out / plan.dataset.name
            # Per camera: its first frame (for the track's metadata) and the frame records.
            tracks: dict[str, tuple[object, list]] = {}
            for frame in world.generate_sequence(plan, seed):
                write_bytes_atomic(
                    dataset_dir / raw_format.image_relpath(
                        frame.split, frame.sequence, frame.camera_id, frame.frame),
                    raw_format.encode_jpeg(frame.image))
                _, records = tracks.setdefault(frame.camera_id, (frame, []))
                records.append(raw_format.frame_record(frame, plan.dataset.two_d_only))
                written += 1
                bar.update(1)
            for first, records in tracks.values():
                raw_format.write_track(dataset_dir, first, records, joint_names)
    # world.json last: its presence marks a complete world.
    raw_format.write_json_compact(out / 'world.json', {
        'format_version': raw_format.FORMAT_VERSION, 'seed': seed, 'num': num, 'num_2d': num_2d,
        'fps': world.FPS, 'datasets': [d.name for d in datasets]})
    return written
