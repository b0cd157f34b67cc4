"""What a real-size dataset build spends its time on, per core: the stages of one example.

Run from the repository root:  .venv/bin/python -m bench.build_stages [--frames=12]
(`python -m bench.posepile` runs it too.) Every rate is examples (or frames) per CPU second of
one process with OpenCV single-threaded, as each build worker is: on a machine shared with
other work the CPU-time rate stays close to the idle one (wall-clock rates do not).

Stages:
  - JPEG decode of 1000x1000 and 2048x2048 frames (q95; two contents: 1/f noise, "detailed",
    ~6 bits/px, and 1/f^1.5 noise, "moderate", ~2 bits/px), in full and at 1/2, 1/4.
  - video decode of a 1000x1000 50 fps mp4 (H.264 from imageio-ffmpeg's ffmpeg if installed,
    `pip install imageio-ffmpeg`; else MPEG-4 part 2 from OpenCV): sequential, and one frame
    after a seek (what posepile.datasets.common.VideoFrame does for frames far apart).
  - the crop's warp (256 px, JPEG q95 + mask), pinhole and distorted camera, same frames.
  - encode + write: posepile.tfrecord_schema.encode_example + TFRecordWriter.write.
  - end to end (decode + crop + encode + write) for JPEG frames, reduced decode off / on.
  - reduced decode's effect on the crops: PSNR and max |difference| against the full decode.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ''):
    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [_root] + [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(
        os.path.abspath(__file__))]

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from posepile.camera import Camera, make_crop_camera  # noqa: E402
from posepile.cropping import CropConfig, crop_example, decode_jpeg, encode_rle  # noqa: E402
from posepile.example import Pose3DExample  # noqa: E402

H36M_LIKE = (-0.207, 0.247, -0.0009, -0.0001, -0.0031)


def per_core_rate(function, items, repeats: int = 1) -> float:
    """Items per CPU second of this process (best of `repeats` passes after a warm-up)."""
    function(items[0])
    best = np.inf
    for _ in range(repeats):
        start = time.process_time()
        for item in items:
            function(item)
        best = min(best, time.process_time() - start)
    return len(items) / best


def noise_frame(side: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """[side, side, 3] uint8 with a 1/f^beta amplitude spectrum (natural images: beta ~ 1-1.5)."""
    f = np.fft.fftfreq(side)
    radius = np.hypot(*np.meshgrid(f, f))
    radius[0, 0] = 1
    channels = []
    for _ in range(3):
        spectrum = (rng.normal(size=(side, side)) + 1j * rng.normal(size=(side, side)))
        plane = np.real(np.fft.ifft2(spectrum / radius ** beta))
        channels.append((plane - plane.mean()) / plane.std() * 40 + 128)
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def frame_files(directory: str, rng: np.random.Generator) -> dict[tuple[int, str], str]:
    files = {}
    for side in (1000, 2048):
        for content, beta in (('detailed', 1.0), ('moderate', 1.5)):
            path = os.path.join(directory, f'{side}_{content}.jpg')
            cv2.imwrite(path, noise_frame(side, beta, rng), [cv2.IMWRITE_JPEG_QUALITY, 95])
            files[side, content] = path
    return files


def decode_rows(files) -> list[tuple[str, ...]]:
    rows = []
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}
    for (side, content), path in files.items():
        data = np.fromfile(path, np.uint8)
        bits = 8 * len(data) / side ** 2
        for factor, flag in flags.items():
            rate = per_core_rate(lambda _: cv2.cvtColor(cv2.imdecode(data, flag),
                                                        cv2.COLOR_BGR2RGB), [None] * 8)
            rows.append((f'JPEG decode {side}x{side} {content} ({bits:.1f} bit/px), '
                         f'{"full" if factor == 1 else f"at 1/{factor}"}',
                         f'{rate:.1f} frames/s', f'{1000 / rate:.1f} ms'))
    return rows


def write_video(path: str, frames: list[np.ndarray], fps: int = 50) -> str:
    """Writes an H.264 mp4 with imageio-ffmpeg's ffmpeg if it is installed (GOP 50 = 1 s), else
    an MPEG-4 part 2 mp4 with OpenCV; returns the codec's name."""
    height, width = frames[0].shape[:2]
    try:
        import imageio_ffmpeg
        command = [imageio_ffmpeg.get_ffmpeg_exe(), '-loglevel', 'error', '-y', '-f', 'rawvideo',
                   '-pix_fmt', 'bgr24', '-s', f'{width}x{height}', '-r', str(fps), '-i', '-',
                   '-c:v', 'libx264', '-preset', 'medium', '-crf', '18', '-g', str(fps),
                   '-pix_fmt', 'yuv420p', path]
        subprocess.run(command, input=b''.join(f.tobytes() for f in frames), check=True)
        return f'H.264 crf 18, GOP {fps}'
    except ImportError:
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
        for frame in frames:
            writer.write(frame)
        writer.release()
        return 'MPEG-4 part 2 (imageio-ffmpeg not installed)'


def video_rows(directory: str, rng: np.random.Generator, n_frames: int) -> list[tuple[str, ...]]:
    # Smoothly moving content (a studio video is mostly static background).
    base = noise_frame(1100, 1.5, rng)
    frames = [np.ascontiguousarray(base[i:i + 1000, i:i + 1000]) for i in range(n_frames)]
    path = os.path.join(directory, 'video.mp4')
    codec = write_video(path, frames)

    def sequential(_):
        capture = cv2.VideoCapture(path)
        while capture.read()[0]:
            pass
        capture.release()

    start = time.process_time()
    sequential(None)
    sequential_rate = n_frames / (time.process_time() - start)
    capture = cv2.VideoCapture(path)
    targets = rng.permutation(n_frames)[:8]

    def seek(index):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        return capture.read()[1]

    seek_rate = per_core_rate(seek, list(targets))
    capture.release()
    rows = [(f'video decode 1000x1000 50 fps, sequential ({codec})',
             f'{sequential_rate:.1f} frames/s', f'{1000 / sequential_rate:.1f} ms'),
            (f'video decode 1000x1000, one frame after a seek ({codec})',
             f'{seek_rate:.1f} frames/s', f'{1000 / seek_rate:.1f} ms')]
    # Every 4th frame (what 100 mm dedup keeps of a 50 fps recording, roughly) through
    # VideoFrame, which decodes forward over short gaps instead of seeking.
    from posepile.datasets.common import VideoFrame
    for gap in (4, 16):
        indices = list(range(0, n_frames, gap))
        start = time.process_time()
        for index in indices:
            VideoFrame(path, index)()
        rate = len(indices) / (time.process_time() - start)
        VideoFrame._captures.pop(path).release()
        VideoFrame._positions.pop(path, None)
        rows.append((f'video decode 1000x1000, every {gap}th frame (VideoFrame, decodes forward)',
                     f'{rate:.1f} frames/s', f'{1000 / rate:.1f} ms per kept frame'))
    return rows


def person_examples(image, side: int, n: int, distortion, rng) -> list[Pose3DExample]:
    """Persons of 30..70 % of the frame height at random places, with an elliptic mask."""
    camera = Camera(intrinsic_matrix=[[side, 0, (side - 1) / 2], [0, side, (side - 1) / 2],
                                      [0, 0, 1]], distortion_coeffs=distortion)
    examples = []
    for _ in range(n):
        h = rng.uniform(0.3, 0.7) * side
        w = h * rng.uniform(0.3, 0.7)
        x, y = rng.uniform(0, side - w), rng.uniform(0, side - h)
        mask = np.zeros((side, side), np.uint8)
        cv2.ellipse(mask, (int(x + w / 2), int(y + h / 2)), (int(w / 2), int(h / 2)), 0, 0,
                    360, 1, -1)
        examples.append(Pose3DExample(
            image=image, camera=camera, world_coords=np.zeros((17, 3)),
            joint_names=[f'j{i}' for i in range(17)], box=[x, y, w, h], dataset='bench',
            mask=encode_rle(mask)))
    return examples


def warp_rows(files, rng, n: int) -> list[tuple[str, ...]]:
    """Crop rates from decoded frames (the warp, JPEG q95 and mask; no frame decode)."""
    rows = []
    config = CropConfig(crop_size=256)
    for side in (1000, 2048):
        image = decode_jpeg(np.fromfile(files[side, 'moderate'], np.uint8).tobytes())
        rates = {}
        for name, distortion in (('pinhole', None), ('distorted (H36M-like)', H36M_LIKE)):
            examples = person_examples(image, side, n, distortion, np.random.default_rng(side))
            rates[name] = per_core_rate(lambda e: crop_example(e, config), examples, repeats=2)
        ratio = rates['pinhole'] / rates['distorted (H36M-like)']
        for name, rate in rates.items():
            rows.append((f'crop 256 px from a decoded {side}x{side} frame, {name}',
                         f'{rate:.1f} crops/s', f'{1000 / rate:.1f} ms' +
                         (f'; pinhole / distorted = {ratio:.2f}' if name != 'pinhole' else '')))
    return rows


def write_rows(files, rng, directory: str) -> list[tuple[str, ...]]:
    import tensorflow as tf

    from posepile.tfrecord_schema import encode_example
    image = decode_jpeg(np.fromfile(files[1000, 'moderate'], np.uint8).tobytes())
    crops = [crop_example(e) for e in person_examples(image, 1000, 8, None, rng)]
    encode_rate = per_core_rate(encode_example, crops * 8)
    records = [encode_example(c) for c in crops] * 64
    with tf.io.TFRecordWriter(os.path.join(directory, 'bench.tfrecord')) as writer:
        write_rate = per_core_rate(writer.write, records)
    size = np.mean([len(r) for r in records]) / 1000
    return [('encode_example (tf.train.Example)', f'{encode_rate:.0f} records/s',
             f'{1000 / encode_rate:.2f} ms'),
            (f'TFRecordWriter.write ({size:.0f} KB records)', f'{write_rate:.0f} records/s',
             f'{1000 / write_rate:.3f} ms')]


def end_to_end_rows(files, rng, n: int) -> list[tuple[str, ...]]:
    """Examples/s per core from JPEG files: decode + crop (+ mask) + JPEG encode."""
    rows = []
    for side in (1000, 2048):
        for distortion_name, distortion in (('pinhole', None), ('distorted', H36M_LIKE)):
            examples = person_examples(files[side, 'moderate'], side, n, distortion,
                                       np.random.default_rng(side + 1))
            rates = [per_core_rate(lambda e: crop_example(e, CropConfig(reduced_decode=r)),
                                   examples) for r in (False, True)]
            rows.append((f'decode + crop, {side}x{side} moderate JPEG, {distortion_name}',
                         f'{rates[0]:.1f} -> {rates[1]:.1f} examples/s',
                         f'full decode -> reduced decode ({rates[1] / rates[0]:.2f}x)'))
    return rows


def psnr_rows(files) -> list[tuple[str, ...]]:
    """Crops through the reduced decode against the full decode (both stored at q100, so the
    difference is the decode's)."""
    from posepile import frame_decode
    rows = []
    for side in (1000, 2048):
        for content in ('detailed', 'moderate'):
            camera = Camera(intrinsic_matrix=[[side, 0, (side - 1) / 2],
                                              [0, side, (side - 1) / 2], [0, 0, 1]])
            cells = []
            for fraction in (0.45, 0.65, 0.9):
                h = fraction * side
                box = [side / 2 - h / 4, side / 2 - h / 2, h / 2, h]
                example = Pose3DExample(image=files[side, content], camera=camera,
                                        world_coords=np.zeros((1, 3)), joint_names=['j0'],
                                        box=box, dataset='bench')
                factor = frame_decode.reduction_for(
                    camera, make_crop_camera(camera, box, 256, scale=1.25))
                crops = [decode_jpeg(crop_example(example, CropConfig(
                    jpeg_quality=100, reduced_decode=r)).image_jpeg).astype(float)
                    for r in (False, True)]
                mse = np.mean((crops[0] - crops[1]) ** 2)
                psnr = 'identical' if mse == 0 else f'{10 * np.log10(255 ** 2 / mse):.1f} dB'
                cells.append(f'box {h:.0f} px: 1/{factor}, {psnr}, max '
                             f'{np.abs(crops[0] - crops[1]).max():.0f}')
            rows.append((f'reduced vs full decode, {side}x{side} {content}', '; '.join(cells),
                         '256 px crops, q100'))
    return rows


def stage_rows(n_crops: int = 24, n_video_frames: int = 100, seed: int = 0):
    cv2.setNumThreads(1)
    rng = np.random.default_rng(seed)
    directory = tempfile.mkdtemp(prefix='build_stages_')
    try:
        files = frame_files(directory, rng)
        return (decode_rows(files) + video_rows(directory, rng, n_video_frames)
                + warp_rows(files, rng, n_crops) + write_rows(files, rng, directory)
                + end_to_end_rows(files, rng, n_crops) + psnr_rows(files))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def print_rows(title: str, rows) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(title)
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)))


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--crops', type=int, default=24)
    parser.add_argument('--video-frames', type=int, default=100)
    args = parser.parse_args()
    print(subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip())
    print_rows('build stages, per core (CPU time of one process, OpenCV single-threaded)',
               stage_rows(args.crops, args.video_frames))
    print(subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip())


if __name__ == '__main__':
    main()
