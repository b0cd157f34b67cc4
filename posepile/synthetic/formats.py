"""Skeleton formats of the synthetic world: joint names and bones (no weights, no imports).

Each format is a different labelling convention of the same hidden body, the way real datasets
disagree about where "the hip" or "the neck" is. The format name is also its union tag, so the
union joint names are `<joint>_<format>` (e.g. 'lhip_synmocap'). Names are lowercase without '_';
a left joint starts with 'l' and its right counterpart with 'r'; centre joints never start with
'l' or 'r'.

How each joint is made from the hidden body (affine combinations of hidden points) lives in
`posepile.synthetic.format_weights`; this module stays dependency-free so the joint registry can
import it cheaply.

Formats:
    synmocap:  optical-mocap-like; hips lower and wider (towards the greater trochanter), neck at
               the shoulder line, head at the head centre.
    synhead:   Human3.6M/3DHP-like; a head-top joint and a high neck (at the skull base).
    synmarker: surface markers (Plug-in-Gait-like) on the skin, not joint centres.
    synsmpl:   SMPL-like, 24 joints incl. three spine joints, collars, feet and hands.
    syncoco:   COCO-like 17 keypoints with face points (nose, eyes, ears), no pelvis/neck.
    synmpii:   MPII/LSP-like 16 joints with head-top, upper neck and a thorax.
2D-only (`SYNTHETIC_2D_SKELETONS`; labelled in image coordinates only, like COCO and MPII):
    syn2d:     an in-the-wild annotator's 16 points (nose, head top, neck, limbs, pelvis). Its base
               names are shared with the 3D formats, which is what lets its labels supervise
               every 3D skeleton (metrabs.data.labels2d).
"""
from __future__ import annotations

SYNTHETIC_SKELETONS: dict[str, tuple[list[str], str]] = {
    'synmocap': (
        ['pelv', 'lhip', 'lkne', 'lank', 'ltoe', 'rhip', 'rkne', 'rank', 'rtoe',
         'spin', 'thor', 'neck', 'head', 'lsho', 'lelb', 'lwri', 'rsho', 'relb', 'rwri'],
        'ltoe-lank-lkne-lhip-pelv-rhip-rkne-rank-rtoe,pelv-spin-thor-neck-head,'
        'neck-lsho-lelb-lwri,neck-rsho-relb-rwri'),
    'synhead': (
        ['pelv', 'lhip', 'lkne', 'lank', 'rhip', 'rkne', 'rank', 'spin', 'thor', 'neck',
         'head', 'htop', 'lsho', 'lelb', 'lwri', 'rsho', 'relb', 'rwri'],
        'lank-lkne-lhip-pelv-rhip-rkne-rank,pelv-spin-thor-neck-head-htop,'
        'thor-lsho-lelb-lwri,thor-rsho-relb-rwri'),
    'synmarker': (
        ['lfhd', 'rfhd', 'lbhd', 'rbhd', 'c7', 't10', 'clav', 'strn',
         'lasi', 'rasi', 'lpsi', 'rpsi', 'lsho', 'rsho', 'lupa', 'rupa', 'lelb', 'relb',
         'lfrm', 'rfrm', 'lwra', 'rwra', 'lwrb', 'rwrb', 'lfin', 'rfin',
         'lthi', 'rthi', 'lkne', 'rkne', 'ltib', 'rtib', 'lank', 'rank',
         'lhee', 'rhee', 'ltoe', 'rtoe'],
        'lfhd-rfhd-rbhd-lbhd-lfhd,lbhd-c7-rbhd,c7-t10-lpsi,t10-rpsi,'
        'clav-strn,lsho-clav-rsho,c7-clav,'
        'lsho-lupa-lelb-lfrm-lwra-lfin,lwra-lwrb,rsho-rupa-relb-rfrm-rwra-rfin,rwra-rwrb,'
        'lasi-rasi-rpsi-lpsi-lasi,lasi-lthi-lkne-ltib-lank-lhee-ltoe-lank,'
        'rasi-rthi-rkne-rtib-rank-rhee-rtoe-rank'),
    'synsmpl': (
        ['pelv', 'lhip', 'rhip', 'spi1', 'lkne', 'rkne', 'spi2', 'lank', 'rank', 'spi3',
         'lfoo', 'rfoo', 'neck', 'lcla', 'rcla', 'head', 'lsho', 'rsho', 'lelb', 'relb',
         'lwri', 'rwri', 'lhan', 'rhan'],
        'lfoo-lank-lkne-lhip-pelv-rhip-rkne-rank-rfoo,pelv-spi1-spi2-spi3-neck-head,'
        'spi3-lcla-lsho-lelb-lwri-lhan,spi3-rcla-rsho-relb-rwri-rhan'),
    'syncoco': (
        ['nose', 'leye', 'reye', 'lear', 'rear', 'lsho', 'rsho', 'lelb', 'relb', 'lwri',
         'rwri', 'lhip', 'rhip', 'lkne', 'rkne', 'lank', 'rank'],
        'lear-leye-nose-reye-rear,lear-lsho,rear-rsho,lsho-rsho,lsho-lelb-lwri,rsho-relb-rwri,'
        'lsho-lhip-lkne-lank,rsho-rhip-rkne-rank,lhip-rhip'),
    'synmpii': (
        ['rank', 'rkne', 'rhip', 'lhip', 'lkne', 'lank', 'pelv', 'thor', 'neck', 'htop',
         'rwri', 'relb', 'rsho', 'lsho', 'lelb', 'lwri'],
        'rank-rkne-rhip-pelv-lhip-lkne-lank,pelv-thor-neck-htop,'
        'rwri-relb-rsho-thor-lsho-lelb-lwri'),
}

SYNTHETIC_2D_SKELETONS: dict[str, tuple[list[str], str]] = {
    'syn2d': (
        ['nose', 'htop', 'neck', 'lsho', 'rsho', 'lelb', 'relb', 'lwri', 'rwri', 'pelv',
         'lhip', 'rhip', 'lkne', 'rkne', 'lank', 'rank'],
        'htop-nose-neck,lsho-neck-rsho,lsho-lelb-lwri,rsho-relb-rwri,neck-pelv,'
        'lhip-pelv-rhip,lhip-lkne-lank,rhip-rkne-rank'),
}
