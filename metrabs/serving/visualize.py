"""Drawing predicted poses: 2D skeletons on the image and a 3D plot beside it (matplotlib Agg)."""
from __future__ import annotations

import os
import pathlib

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _colors(n: int) -> np.ndarray:
    return plt.get_cmap('tab10')(np.arange(max(n, 1)) % 10)


TRUTH_STYLE = dict(color='white', linestyle='--', linewidth=1.5)
TRUTH_STYLE_3D = dict(color='black', linestyle='--', linewidth=1.5)


def _bones_2d(ax, pose: np.ndarray, edges: np.ndarray, **style) -> None:
    if len(edges):
        segments = pose[np.asarray(edges)]  # [E, 2 ends, 2]
        xs = np.stack([segments[:, 0, 0], segments[:, 1, 0], np.full(len(edges), np.nan)], 1)
        ys = np.stack([segments[:, 0, 1], segments[:, 1, 1], np.full(len(edges), np.nan)], 1)
        ax.plot(xs.ravel(), ys.ravel(), **style)
    ax.scatter(pose[:, 0], pose[:, 1], s=6, color=style['color'])


def draw_skeletons_2d(ax, image: np.ndarray, poses2d: np.ndarray, edges: np.ndarray,
                      boxes: np.ndarray | None = None, truth2d: np.ndarray | None = None) -> None:
    """Image [H, W, 3] with each pose [P, J, 2] (image px) drawn as bones; optional boxes [P, 4+]
    (xywh px) and ground-truth poses [Q, J, 2] (dashed white). Pixel centres are at integer
    coordinates, as matplotlib's imshow places them."""
    ax.imshow(image)
    colors = _colors(len(poses2d))
    for pose in np.asarray(truth2d if truth2d is not None else np.zeros((0, 0, 2))):
        _bones_2d(ax, pose, edges, **TRUTH_STYLE)
    for i, pose in enumerate(np.asarray(poses2d)):
        _bones_2d(ax, pose, edges, color=colors[i], linewidth=2)
        if boxes is not None and i < len(boxes):
            x, y, w, h = np.asarray(boxes[i][:4], np.float64)
            ax.add_patch(plt.Rectangle((x - 0.5, y - 0.5), w, h, fill=False, color=colors[i]))
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.axis('off')


def plot_skeletons_3d(ax, poses3d: np.ndarray, edges: np.ndarray,
                      truth3d: np.ndarray | None = None) -> None:
    """Poses [P, J, 3] in mm, camera frame (x right, y down, z forward), shown with up = -y;
    optional ground-truth poses [Q, J, 3] (dashed black) in the same frame."""
    poses = np.asarray(poses3d, np.float64).reshape(-1, *np.shape(poses3d)[1:])
    truth = np.zeros((0, *poses.shape[1:])) if truth3d is None else np.asarray(truth3d,
                                                                               np.float64)
    colors = _colors(len(poses))
    styles = [TRUTH_STYLE_3D] * len(truth) + [dict(color=c, linewidth=2) for c in colors]
    for pose, style in zip([*truth, *poses], styles):
        shown = np.stack([pose[:, 0], pose[:, 2], -pose[:, 1]], axis=-1)
        for a, b in np.asarray(edges).reshape(-1, 2):
            ax.plot(*shown[[a, b]].T, **style)
        ax.scatter(*shown.T, s=4, color=style['color'])
    everything = np.concatenate([truth, poses]) if len(truth) else poses
    finite = everything[np.all(np.isfinite(everything), axis=(1, 2))] if len(everything) else []
    if len(finite):
        flat = np.stack([finite[..., 0], finite[..., 2], -finite[..., 1]], -1).reshape(-1, 3)
        center = (flat.max(0) + flat.min(0)) / 2
        radius = max(float((flat.max(0) - flat.min(0)).max()) / 2, 500.0)
        ax.set_xlim(center[0] - radius, center[0] + radius)
        ax.set_ylim(center[1] - radius, center[1] + radius)
        ax.set_zlim(center[2] - radius, center[2] + radius)
    ax.set_xlabel('x (mm)')
    ax.set_ylabel('z (mm)')
    ax.set_zlabel('-y (mm)')


def save_figure(out_path: str | os.PathLike, image: np.ndarray, poses2d: np.ndarray,
                poses3d: np.ndarray, edges: np.ndarray, boxes: np.ndarray | None = None,
                dpi: int = 100, truth2d: np.ndarray | None = None,
                truth3d: np.ndarray | None = None, title: str | None = None) -> None:
    """Image with 2D skeletons (left) and the 3D poses (right), with the ground truth dashed
    where given and a title, written to out_path (format from the extension), through a
    temporary file and a rename."""
    out_path = pathlib.Path(out_path)
    fig = plt.figure(figsize=(12, 5.5 if title else 5))
    try:
        draw_skeletons_2d(fig.add_subplot(1, 2, 1), image, poses2d, edges, boxes, truth2d)
        plot_skeletons_3d(fig.add_subplot(1, 2, 2, projection='3d'), poses3d, edges, truth3d)
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        tmp = out_path.with_name(f'.{out_path.name}.tmp{os.getpid()}')
        fig.savefig(tmp, format=out_path.suffix.lstrip('.') or 'png', dpi=dpi)
        os.replace(tmp, out_path)
    finally:
        plt.close(fig)


def draw_overlay(frame: np.ndarray, poses2d: np.ndarray, edges: np.ndarray,
                 boxes: np.ndarray | None = None, ids: np.ndarray | None = None) -> np.ndarray:
    """A copy of frame [H, W, 3] uint8 with each pose [P, J, 2] (image px) drawn as bones and
    joints, its box [P, 4+] (xywh px) and id [P]; colours follow the id (or the pose index), so a
    tracked person keeps one colour. OpenCV drawing, fast enough for every frame of a video."""
    import cv2
    out = np.ascontiguousarray(frame, np.uint8).copy()
    poses2d = np.asarray(poses2d, np.float64)
    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    keys = np.arange(len(poses2d)) if ids is None else np.asarray(ids)
    colors = (_colors(int(keys.max()) + 1 if len(keys) else 1)[:, :3] * 255).astype(int)
    thickness = max(1, round(max(out.shape[:2]) / 300))
    for i, pose in enumerate(poses2d):
        color = tuple(int(c) for c in colors[keys[i] % len(colors)])
        finite = np.isfinite(pose).all(-1)
        points = np.round(np.where(finite[:, None], pose, 0)).astype(np.int32)
        for a, b in edges:
            if finite[a] and finite[b]:
                cv2.line(out, tuple(points[a]), tuple(points[b]), color, thickness, cv2.LINE_AA)
        for p in points[finite]:
            cv2.circle(out, tuple(p), thickness + 1, color, -1, cv2.LINE_AA)
        if boxes is not None and i < len(boxes):
            x, y, w, h = np.round(np.asarray(boxes[i][:4], np.float64)).astype(int)
            cv2.rectangle(out, (x, y), (x + w, y + h), color, thickness)
            if ids is not None:
                cv2.putText(out, str(int(ids[i])), (x, max(y - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                            0.4 * thickness, color, thickness, cv2.LINE_AA)
    return out
