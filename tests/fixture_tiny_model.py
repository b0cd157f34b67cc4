"""A tiny MeTRAbs model (random weights of a visible scale) and what the deployment tests build
around it: its checkpoint, the export CLI, and a detector with the TF2 Object Detection API /
TF-Hub signature that finds coloured rectangles (the tests' "people"). The session fixtures in
conftest.py share them, because tracing and exporting are the slow part of these tests."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import tensorflow as tf

from metrabs.model.config import ModelConfig
from metrabs.model.metrabs_model import MetrabsModel
from posepile import joints as joint_registry

REPO = pathlib.Path(__file__).resolve().parents[1]
SIDE = 64
SKELETONS = ('h36m', 'coco')  # the model predicts their union joints
CONFIG = ModelConfig(backbone='tiny', proc_side=SIDE, ghost_bn_group_size=0)
IMAGE_SHAPE = (96, 128, 3)

# The rectangle "people" the detector finds: colour -> (class id, score). Red and green are
# people (COCO class 1), blue is a "car" (class 3).
RECT_COLORS = {(255, 0, 0): (1, 0.9), (0, 255, 0): (1, 0.8), (0, 0, 255): (3, 0.95)}
LOW_SCORE_BOX = (0.0, 0.0, 0.25, 0.25, 0.1)  # ymin, xmin, ymax, xmax (normalised), score
N_SLOTS = 6


def joint_names():
    return [n for s in SKELETONS for n in joint_registry.union_names(s)]


def randomize(model, seed=0):
    """Random weights of a visible scale, so outputs depend on the image (fresh BN stats are
    trivial and an untrained head is nearly uniform)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if 'moving_variance' in v.path:
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
        elif 'moving_mean' in v.path:
            v.assign(rng.normal(0, 0.2, v.shape).astype(np.float32))
        else:
            v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))


def write_checkpoint(root: pathlib.Path) -> MetrabsModel:
    """The tiny randomised model, saved as metrabs.train would leave a logdir at `root`."""
    model = MetrabsModel(CONFIG, joint_names())
    model(tf.zeros([1, SIDE, SIDE, 3]), tf.eye(3, batch_shape=[1]))
    randomize(model)
    tf.train.Checkpoint(model=model, step=tf.Variable(7, dtype=tf.int64)).save(
        str(root / 'checkpoints' / 'ckpt'))
    (root / 'config.json').write_text(json.dumps({'model': {
        'backbone': 'tiny', 'proc_side': SIDE, 'ghost_bn_group_size': 0}}))
    (root / 'joint_names.json').write_text(json.dumps(joint_names()))
    return model


def run_module(*args: str, cwd=REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m ARGS` in another process (quiet TF logging); fails the test with its stderr."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    result = subprocess.run([sys.executable, '-m', *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def rectangle_image(rects: dict, shape=IMAGE_SHAPE) -> np.ndarray:
    """Black image with filled rectangles {colour: (x0, y0, x1, y1) inclusive px}."""
    image = np.zeros(shape, np.uint8)
    for color, (x0, y0, x1, y1) in rects.items():
        image[y0:y1 + 1, x0:x1 + 1] = color
    return image


def expected_person_boxes(rects: dict) -> np.ndarray:
    """[N, 5] xywh px + score that the detector contract should give for `rects` (people only,
    by decreasing score): a rectangle covering pixels x0..x1 spans x0 .. x1 + 1."""
    rows = [(x0, y0, x1 + 1 - x0, y1 + 1 - y0, RECT_COLORS[c][1])
            for c, (x0, y0, x1, y1) in rects.items() if RECT_COLORS[c][0] == 1]
    return np.array(sorted(rows, key=lambda r: -r[4]), np.float32).reshape(-1, 5)


class FixedBoxDetector(tf.Module):
    """A detector SavedModel obeying the contract: fixed boxes, thresholded by score."""

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8),
                                  tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.float32),
                                  tf.TensorSpec([], tf.int32)])
    def __call__(self, image, threshold, nms_iou_threshold, max_detections):
        boxes = tf.constant([[10.0, 5, 40, 60, 0.9], [60, 20, 30, 50, 0.6], [0, 0, 5, 5, 0.1]])
        return tf.boolean_mask(boxes, boxes[:, 4] >= threshold)


class ObjectDetectionApiStyleDetector(tf.Module):
    """The TF2 Object Detection API output signature, computed from the image: for each colour of
    RECT_COLORS present (channel values > 200 / < 50), the bounding box of its pixels, plus an
    always-present low-score person box. Outputs are padded to N_SLOTS rows with garbage
    (class 1, score 0.99) beyond num_detections, which a consumer must ignore."""

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8,
                                                name='input_tensor')])
    def __call__(self, input_tensor):
        image = tf.cast(input_tensor[0], tf.int32)
        size = tf.cast(tf.shape(image)[:2], tf.float32)
        boxes, scores, classes, present = [], [], [], []
        for color, (label, score) in RECT_COLORS.items():
            on = tf.reduce_all(tf.where(tf.constant(color) > 0, image > 200, image < 50), -1)
            rows = tf.cast(tf.where(tf.reduce_any(on, 1))[:, 0], tf.float32)
            cols = tf.cast(tf.where(tf.reduce_any(on, 0))[:, 0], tf.float32)
            found = tf.size(rows) > 0
            box = tf.cond(found, lambda r=rows, c=cols: tf.stack([
                tf.reduce_min(r), tf.reduce_min(c), tf.reduce_max(r) + 1,
                tf.reduce_max(c) + 1]) / tf.concat([size, size], 0), lambda: tf.zeros([4]))
            boxes.append(box)
            scores.append(score)
            classes.append(float(label))
            present.append(found)
        boxes.append(tf.constant(LOW_SCORE_BOX[:4]))
        scores.append(LOW_SCORE_BOX[4])
        classes.append(1.0)
        present.append(tf.constant(True))
        keep = tf.stack(present)
        boxes = tf.boolean_mask(tf.stack(boxes), keep)
        scores = tf.boolean_mask(tf.constant(scores), keep)
        classes = tf.boolean_mask(tf.constant(classes), keep)
        order = tf.argsort(scores, direction='DESCENDING')
        n = tf.shape(scores)[0]
        pad = N_SLOTS - n
        return {
            'detection_boxes': tf.concat([tf.gather(boxes, order),
                                          tf.fill([pad, 4], 0.3)], 0)[None],
            'detection_scores': tf.concat([tf.gather(scores, order), tf.fill([pad], 0.99)],
                                          0)[None],
            'detection_classes': tf.concat([tf.gather(classes, order), tf.ones([pad])], 0)[None],
            'num_detections': tf.cast(n, tf.float32)[None]}


def save_od_detector(path: pathlib.Path) -> None:
    detector = ObjectDetectionApiStyleDetector()
    tf.saved_model.save(detector, str(path), signatures={'serving_default': detector.__call__})


README = REPO / 'README.md'
README_SECTIONS = ('Using an exported model', 'Deployment')
# The README's snippets are written for the default run's model (synthetic skeletons); the tiny
# test model predicts the H36M and COCO skeletons instead.
README_SUBSTITUTIONS = {"'synsmpl'": "'h36m_17'", '--skeleton=synsmpl': '--skeleton=h36m_17'}


def readme_blocks(language: str) -> list[str]:
    """The ```language code blocks of the README sections README_SECTIONS, in order, with
    README_SUBSTITUTIONS applied."""
    blocks, section, fence, lines = [], None, None, []
    for line in README.read_text(encoding='utf-8').splitlines():
        if fence is None and line.startswith('## '):
            section = line[3:].strip()
        elif fence is None and line.startswith('```'):
            fence, lines = line[3:].strip(), []
        elif line.startswith('```'):
            if fence == language and section in README_SECTIONS:
                text = '\n'.join(lines)
                for old, new in README_SUBSTITUTIONS.items():
                    text = text.replace(old, new)
                blocks.append(text)
            fence = None
        elif fence is not None:
            lines.append(line)
    return blocks


def write_clip(path, frames, fps: float = 10.0) -> None:
    """Frames [T, H, W, 3] uint8 as a (near-)lossless H.264 .mp4 via the imageio-ffmpeg binary."""
    import imageio_ffmpeg
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, codec='libx264',
                                         pix_fmt_out='yuv444p', output_params=['-crf', '0'],
                                         macro_block_size=1, ffmpeg_log_level='error')
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def smooth_image(shape=(240, 320, 3), seed=1) -> np.ndarray:
    """A smooth random uint8 image (a stand-in photo)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (12, 16, 3)).astype(np.float32)
    return tf.image.resize(coarse[None], shape[:2], 'bicubic')[0].numpy().clip(
        0, 255).astype(np.uint8)
