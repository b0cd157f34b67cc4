"""Writers of image/video files for dataset-format fixtures (the tests of posepile/datasets)."""
from __future__ import annotations

import pathlib

import numpy as np


def write_video(path, frames: np.ndarray, fourcc: str = 'mp4v', fps: float = 25.0) -> None:
    """Writes RGB uint8 frames [T, H, W, 3] as a video (mp4v .mp4 or MJPG .avi)."""
    import cv2
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'cannot write video {path}')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def write_jpeg(path, image: np.ndarray) -> None:
    """Writes one RGB uint8 image [H, W, 3] as JPEG."""
    import cv2
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]),
                       [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise RuntimeError(f'cannot write {path}')


def read_image(path) -> np.ndarray:
    import cv2
    return cv2.imread(str(path))[..., ::-1]
