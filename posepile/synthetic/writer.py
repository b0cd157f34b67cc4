"""Writes the synthetic world to disk in the layout of `raw_format` (the CLI's library half)."""
from __future__ import annotations

import pathlib

from tqdm import tqdm

from posepile.atomic_io import write_bytes_atomic
from posepile.synthetic import format_weights
from posepile.synthetic import raw_format
from posepile.synthetic import world
from posepile.synthetic.formats import SYNTHETIC_SKELETONS


def write_world(out_dir: str | pathlib.Path, num: int, seed: int, progress: bool = True) -> int:
    """Renders `num` images (all datasets and splits) with `seed` into `out_dir`.

    Deterministic: the same (num, seed) gives byte-identical files. Returns the number of images.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plans = world.plan_sequences(num, seed)
    total = sum(p.n_images for p in plans)
    joint_names = {f: list(SYNTHETIC_SKELETONS[f][0]) for f in format_weights.FORMAT_NAMES}
    for spec in world.DATASETS:
        raw_format.write_json_compact(out / spec.name / 'info.json', {
            'name': spec.name, 'description': spec.description,
            'labelled_formats': list(spec.formats),
            'test_formats': list(format_weights.FORMAT_NAMES),
            'skeletons': {f: {'joints': names, 'bones': SYNTHETIC_SKELETONS[f][1]}
                          for f, names in joint_names.items()},
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
                records.append(raw_format.frame_record(frame))
                written += 1
                bar.update(1)
            for first, records in tracks.values():
                raw_format.write_track(dataset_dir, first, records, joint_names)
    # world.json last: its presence marks a complete world.
    raw_format.write_json_compact(out / 'world.json', {
        'format_version': raw_format.FORMAT_VERSION, 'seed': seed, 'num': num, 'fps': world.FPS,
        'datasets': [d.name for d in world.DATASETS]})
    return written
