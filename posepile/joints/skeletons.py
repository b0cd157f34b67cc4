"""Every real-dataset skeleton format: joint names in the order the dataset distributes them, bones.

A format's joints enter the union as '<joint>_<tag>' (plain '<joint>' for the empty SMPL tag), so
formats that share a labelling convention share a tag and thereby share output joints (DESIGN.md).
Base joint names are short, lowercase and never contain '_', so a union name splits at its first
'_'. A left joint starts with 'l' and its right counterpart with 'r'; no centre joint starts with
'l' or 'r' (otherwise JointInfo would mirror it).

Bones use the chain form of `joint_info.parse_edges`. Most tables list bones for the centre and
the left side only; `_mirrored` adds the right side, so left/right bone sets cannot drift apart.

Named test-set formats ('h36m_17', 'smpl_24', 'mpi_inf_3dhp_17', 'mupots_17') and the COCO-17
formats are subsets of a parent format (`SkeletonFormat.parent`): same tag, no new union joints.

The synthetic formats live in `posepile.synthetic.formats`; `posepile.joints` registers them.

Where a list could not be established from the dataset's own documentation, the comment says
what it rests on (mostly the public PosePile loaders of the paper's authors).
"""
from __future__ import annotations

import dataclasses

from posepile.joints.joint_info import mirror_name, parse_edges


@dataclasses.dataclass(frozen=True)
class SkeletonFormat:
    """One skeleton format.

    Attributes:
        name: registry name, e.g. 'h36m', 'mpi_inf_3dhp_17'.
        tag: union tag; '' means plain (SMPL) names.
        joints: base joint names in the dataset's own order (rows of its coordinate arrays).
        edges: bones as a chain string ('a-b-c,d-e').
        parent: for named subsets, the format whose joints (and tag) these are; else None.
        is_2d: True for image-only (2D) annotation formats.
        source: where the joint list comes from, in one line.
    """

    name: str
    tag: str
    joints: tuple[str, ...]
    edges: str
    parent: str | None = None
    is_2d: bool = False
    source: str = ''


def _mirrored(chains: str) -> str:
    """Adds the left/right mirror image of every chain that touches a sided joint.

    Assumes the naming rule of this module (centre names never start with 'l'/'r'); duplicates
    (e.g. 'lsho-rsho' and its mirror 'rsho-lsho') are dropped.
    """
    pairs = parse_edges(chains)
    mirrored = [(mirror_name(a), mirror_name(b)) for a, b in pairs]
    seen = set()
    unique = []
    for a, b in pairs + mirrored:
        key = frozenset((a, b))
        if key not in seen:
            seen.add(key)
            unique.append(f'{a}-{b}')
    return ','.join(unique)


def _star(centre: str, leaves: str) -> str:
    """Bones from one joint to each of several (marker clusters): 'c-a,c-b,...'."""
    return ','.join(f'{centre}-{leaf}' for leaf in leaves.split())


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# --- SMPL family -------------------------------------------------------------------------------
# SMPL's 24 kinematic joints in the model's order (pelvis, left_hip, right_hip, spine1, ...).
_SMPL_JOINTS = _names("""
    pelv lhip rhip spi1 lkne rkne spi2 lank rank spi3 lfoo rfoo
    neck lcla rcla head lsho rsho lelb relb lwri rwri lhan rhan""")
_SMPL_EDGES = _mirrored('pelv-spi1-spi2-spi3-neck-head,pelv-lhip-lkne-lank-lfoo,'
                        'spi3-lcla-lsho-lelb-lwri-lhan')

# SMPL-X's 55 kinematic joints: the 22 SMPL body joints (SMPL's hands are replaced by fingers),
# jaw, two eyes, then 15 left-hand and 15 right-hand finger joints, each hand ordered index,
# middle, pinky, ring, thumb (the smplx package's JOINT_NAMES order). The 'smplx' tag keeps them
# apart from SMPL's joints, since SMPL-X's joint regressor differs.
_FINGERS = ('idx', 'mid', 'pin', 'rin', 'thu')
_SMPLX_JOINTS = (
    _SMPL_JOINTS[:22] + ('jaw', 'leye', 'reye')
    + tuple(f'l{f}{i}' for f in _FINGERS for i in (1, 2, 3))
    + tuple(f'r{f}{i}' for f in _FINGERS for i in (1, 2, 3)))
_SMPLX_EDGES = _mirrored(
    'pelv-spi1-spi2-spi3-neck-head-jaw,head-leye,pelv-lhip-lkne-lank-lfoo,'
    'spi3-lcla-lsho-lelb-lwri,'
    + ','.join(f'lwri-l{f}1-l{f}2-l{f}3' for f in _FINGERS))

# --- Human3.6M ---------------------------------------------------------------------------------
# All 32 joints of D3_Positions in the mocap hierarchy's order: 0 Hips, 1-5 RightUpLeg, RightLeg,
# RightFoot, RightToeBase, Site; 6-10 the same on the left; 11 Spine, 12 Spine1, 13 Neck, 14 Head,
# 15 Site (head top); 16-23 LeftShoulder, LeftArm, LeftForeArm, LeftHand, LeftHandThumb, Site,
# L_Wrist_End, Site; 24-31 the same on the right. Public loaders that use "all" joints drop
# 11, 16, 20, 23, 24, 28, 31 as redundant; they are kept here so the rows match the files.
# Naming: the mocap 'LeftArm' is the shoulder joint ('lsho'), 'LeftShoulder' the clavicle ('lcla'),
# 'LeftHand' the wrist ('lwri'); 'tors' is Spine1, the "spine" joint of the common 17-joint set.
_H36M_JOINTS = _names("""
    pelv rhip rkne rank rfoo rtoe lhip lkne lank lfoo ltoe
    spin tors neck head htop
    lcla lsho lelb lwri lhan lthu lfin lfit
    rcla rsho relb rwri rhan rthu rfin rfit""")
_H36M_EDGES = _mirrored('pelv-spin-tors-neck-head-htop,pelv-lhip-lkne-lank-lfoo-ltoe,'
                        'tors-lcla-lsho-lelb-lwri-lhan-lthu,lwri-lfin-lfit')
# The common 17-joint protocol: D3_Positions indices 0,1,2,3,6,7,8,12,13,14,15,17,18,19,25,26,27.
_H36M_17_JOINTS = _names(
    'pelv rhip rkne rank lhip lkne lank tors neck head htop lsho lelb lwri rsho relb rwri')
_H36M_17_EDGES = _mirrored('pelv-tors-neck-head-htop,pelv-lhip-lkne-lank,neck-lsho-lelb-lwri')
# Fit3D / CHI3D / HumanSC3D joints3d_25: the 17-joint protocol, then right toe base and tip, left
# toe base and tip, left thumb and hand end, right thumb and hand end (H36M rows 0 1 2 3 6 7 8 12
# 13 14 15 17 18 19 25 26 27 4 5 9 10 21 22 29 30; the pairs' order inferred from H36M's).
_H36M_25_JOINTS = _names('pelv rhip rkne rank lhip lkne lank tors neck head htop lsho lelb lwri '
                         'rsho relb rwri rfoo rtoe lfoo ltoe lthu lfin rthu rfin')
_H36M_25_EDGES = _mirrored('pelv-tors-neck-head-htop,pelv-lhip-lkne-lank-lfoo-ltoe,'
                           'neck-lsho-lelb-lwri-lthu,lwri-lfin')

# --- MPI-INF-3DHP / MuCo-3DHP / MuPoTS-3D -----------------------------------------------------
# The 28 'annot3' joints in the dataset's order: spine3, spine4, spine2, spine, pelvis, neck,
# head, head_top, left clavicle/shoulder/elbow/wrist/hand, right ditto, left hip/knee/ankle/
# foot/toe, right ditto.
_TDHP_JOINTS = _names("""
    spi3 spi4 spi2 spin pelv neck head htop
    lcla lsho lelb lwri lhan rcla rsho relb rwri rhan
    lhip lkne lank lfoo ltoe rhip rkne rank rfoo rtoe""")
_TDHP_EDGES = _mirrored('pelv-spin-spi2-spi3-spi4-neck-head-htop,neck-lcla-lsho-lelb-lwri-lhan,'
                        'pelv-lhip-lkne-lank-lfoo-ltoe')
# The 17-joint universal skeleton of the 3DHP test set ('univ_annot3'; annot3 indices
# 7,5,14,15,16,9,10,11,23,24,25,18,19,20,4,3,6) and MuPoTS-3D, which uses the same 17 joints in
# the same order.
_TDHP_17_JOINTS = _names(
    'htop neck rsho relb rwri lsho lelb lwri rhip rkne rank lhip lkne lank pelv spin head')
_TDHP_17_EDGES = _mirrored('htop-head-neck-spin-pelv,neck-lsho-lelb-lwri,pelv-lhip-lkne-lank')
# MuCo-3DHP as released with 3DMPPE (MuCo-3DHP.json, 21 joints): the 'extended' set of the 3DHP
# toolkit's mpii_get_joint_set.m, i.e. the 17 above followed by the end effectors right hand,
# left hand, right toe, left toe (annot3 indices 17, 12, 27, 22). The 3DMPPE loader's names
# (Head_top, Thorax, R_Shoulder, ..., Pelvis, Spine, Head, R_Hand, L_Hand, R_Toe, L_Toe) list
# the same order; its 'Thorax' is 3DHP's 'neck'.
_TDHP_21_JOINTS = _TDHP_17_JOINTS + _names('rhan lhan rtoe ltoe')
_TDHP_21_EDGES = _mirrored('htop-head-neck-spin-pelv,neck-lsho-lelb-lwri-lhan,'
                           'pelv-lhip-lkne-lank-ltoe')

# --- COCO-style keypoints ------------------------------------------------------------------------
# CMU-Panoptic 'joints19' (coco19): Neck, Nose, BodyCenter (mid-hip), lShoulder, lElbow, lWrist,
# lHip, lKnee, lAnkle, rShoulder, rElbow, rWrist, rHip, rKnee, rAnkle, lEye, lEar, rEye, rEar.
_COCO19_JOINTS = _names("""
    neck nose pelv lsho lelb lwri lhip lkne lank rsho relb rwri rhip rkne rank
    leye lear reye rear""")
_COCO19_EDGES = _mirrored('nose-neck-pelv,nose-leye-lear,neck-lsho-lelb-lwri,pelv-lhip-lkne-lank')
# The COCO 17 keypoints in COCO's order (also AIST++'s keypoints3d and IKEA-ASM's pose3d order).
_COCO17_JOINTS = _names(
    'nose leye reye lear rear lsho rsho lelb relb lwri rwri lhip rhip lkne rkne lank rank')
_COCO17_EDGES = _mirrored('lear-leye-nose,lear-lsho-lelb-lwri,lsho-lhip-lkne-lank,'
                          'lsho-rsho,lhip-rhip')
# HUMBI's body keypoints (reconstruction/keypoints.txt) follow OpenPose BODY_25: Nose, Neck,
# R/L arm, MidHip, R/L leg, eyes, ears, then LBigToe, LSmallToe, LHeel, RBigToe, RSmallToe,
# RHeel. Tagged 'coco': OpenPose's body keypoints are trained on COCO's definitions and CMU's
# coco19 is the same convention (the Panoptic studio's own OpenPose-style skeleton), so HUMBI's
# 19 shared keypoints merge with CMU-Panoptic's and its 6 foot points are new 'coco' joints.
_BODY25_JOINTS = _names("""
    nose neck rsho relb rwri lsho lelb lwri pelv rhip rkne rank lhip lkne lank
    reye leye rear lear lbtoe lstoe lhee rbtoe rstoe rhee""")
_BODY25_EDGES = _mirrored(_COCO19_EDGES + ',lank-lbtoe-lstoe,lank-lhee')

# --- Other 3D datasets -------------------------------------------------------------------------
# SAIL-VOS (GTA-V): the raw files hold several hundred game-rig points without public names;
# these 26 joints are the ones the reference (PosePile) loader derives by averaging groups of
# raw point indices. The converter must use the same index groups.
_SAILVOS_JOINTS = _names("""
    htop neck rsho relb rwri lsho lelb lwri rhip rkne rank lhip lkne lank spin head pelv
    rtoe ltoe nose reye leye rear lear rhan lhan""")
_SAILVOS_EDGES = _mirrored('htop-head-neck-spin-pelv,head-nose-leye-lear,'
                           'pelv-lhip-lkne-lank-ltoe,neck-lsho-lelb-lwri-lhan')

# GPA (Gaussian Pose Annotations): 34 joints of 'joint_cams' in the annotation json, order as in
# the reference loader (the dataset's own readme names them only by index).
_GPA_JOINTS = _names("""
    pelv spin spi1 spi2 spi3 neck head htop
    rcla rsho relb rwri rhan rfin rthu rthu2
    lcla lsho lelb lwri lhan lfin lthu lthu2
    rhip rkne rank rfoo rtoe lhip lkne lank lfoo ltoe""")
_GPA_EDGES = _mirrored('pelv-spin-spi1-spi2-spi3-neck-head-htop,'
                       'spi3-lcla-lsho-lelb-lwri-lhan-lfin,lwri-lthu-lthu2,'
                       'pelv-lhip-lkne-lank-lfoo-ltoe')

# ASPset-510: the 17 joints of joints_3d/*.c3d: right ankle, knee, hip, wrist, elbow, shoulder,
# left ditto, head top, head, neck, spine, pelvis.
_ASPSET_JOINTS = _names(
    'rank rkne rhip rwri relb rsho lank lkne lhip lwri lelb lsho htop head neck spin pelv')
_ASPSET_EDGES = _mirrored('htop-head-neck-spin-pelv,neck-lsho-lelb-lwri,pelv-lhip-lkne-lank')

# 3DPeople: the skeleton/*.txt files hold more rows (incl. hand joints) whose full naming is not
# public; these are the 29 body joints the reference loader selects, at rows
# 0-13, 33-36, 53, 57-66 of each file.
_TDPEOPLE_JOINTS = _names("""
    pelv spin spi1 spi2 neck head reye leye htop lcla lsho lelb lwri lhan
    rcla rsho relb rwri rhan lhip lkne lank lfoo ltoe rhip rkne rank rfoo rtoe""")
_TDPEOPLE_EDGES = _mirrored('pelv-spin-spi1-spi2-neck-head-htop,head-leye,'
                            'spi2-lcla-lsho-lelb-lwri-lhan,pelv-lhip-lkne-lank-lfoo-ltoe')

# BML-MoVi: the 87 points of 'markerLocation' in the v3d .mat files: 67 skin markers followed by
# the 20 virtual joint markers (which also exist alone as 'virtualMarkerLocation'). Marker names
# and order follow the reference loader; the dataset documents the placement in a figure.
_MOVI_MARKERS_LEFT = """
    lfronthead lbackhead lback lshom lupperarm lelbm lforearm lwrithumbside lwripinkieside lfin
    lasis lpsis lfrontthigh lthigh lknem lankm lhee lfifthmetatarsal ltoe lcheek lbreast
    lelbinner lwaist lthumb lfrontinnerthigh linnerknee lshin lfirstmetatarsal lfourthtoe
    lscapula lbum"""
_MOVI_JOINTS = (
    _names('backneck upperback clavicle sternum umbilicus')
    + _names(_MOVI_MARKERS_LEFT)
    + tuple(mirror_name(n) for n in _names(_MOVI_MARKERS_LEFT))
    + _names("""head mhip pelv thor lank lelb lhip lhan lkne lsho lwri lfoo
                rank relb rhip rhan rkne rsho rwri rfoo"""))
# Markers hang off the virtual joint they sit closest to, so the marker graph stays connected.
_MOVI_EDGES = _mirrored(','.join([
    'head-thor-pelv-mhip,thor-lsho-lelb-lwri-lhan,mhip-lhip-lkne-lank-lfoo',
    _star('head', 'lfronthead lbackhead lcheek'),
    _star('thor', 'backneck upperback clavicle sternum lback lbreast lscapula'),
    _star('pelv', 'umbilicus lasis lpsis lwaist'),
    _star('lsho', 'lshom lupperarm'),
    _star('lelb', 'lelbm lelbinner lforearm'),
    _star('lwri', 'lwrithumbside lwripinkieside'),
    _star('lhan', 'lfin lthumb'),
    _star('lhip', 'lfrontthigh lthigh lfrontinnerthigh lbum'),
    _star('lkne', 'lknem linnerknee lshin'),
    _star('lank', 'lankm lhee'),
    _star('lfoo', 'lfifthmetatarsal ltoe lfirstmetatarsal lfourthtoe')]))

# MADS: the 19 joints of GTpose2 in the *_GT.mat files (some sequences have only 15 of them:
# neck pelv lhip lkne lank rhip rkne rank lsho lelb lwri rsho relb rwri head).
_MADS_JOINTS = _names("""
    neck pelv lhip lkne lank ltoe rhip rkne rank rtoe lsho lelb lwri lhan rsho relb rwri rhan
    head""")
_MADS_EDGES = _mirrored('head-neck-pelv,neck-lsho-lelb-lwri-lhan,pelv-lhip-lkne-lank-ltoe')

# UMPM: the 15 virtual-marker joints per person of Groundtruth/*_vm.c3d (two people = 30 rows).
_UMPM_JOINTS = _names('pelv neck head rsho relb rwri lsho lelb lwri rhip lhip rkne lkne rank lank')
_UMPM_EDGES = _mirrored('head-neck-pelv,neck-lsho-lelb-lwri,pelv-lhip-lkne-lank')

# Berkeley MHAD: the 43 LED markers of the Mocap/OpticalData c3d files. The order follows the
# reference loader; the names are descriptive labels of the placement figure in the dataset's
# documentation, not official names.
_BMHAD_JOINTS = _names("""
    head lhead rhead rback backl backt lback lside bell chest rside
    lsho1 lsho2 larm lelb lwri lhan1 lhan2 lhan3
    rsho1 rsho2 rarm relb rwri rhan1 rhan2 rhan3
    lhipb lhipf lhipl lleg lkne lank lhee lfoo
    rhipb rhipf rhipl rleg rkne rank rhee rfoo""")
_BMHAD_EDGES = _mirrored(
    'head-backt-backl,head-chest-bell,head-lhead,backt-lback,bell-lside-lhipl,'
    'backt-lsho1-lsho2-larm-lelb-lwri-lhan1,lwri-lhan2,lwri-lhan3,'
    'backl-lhipb-lhipl-lhipf-lleg-lkne-lank-lhee-lfoo,bell-lhipf')

# TotalCapture: the 21 joints of vicon/*/gt_skel_gbl_pos.txt (header: Hips Spine Spine1 Spine2
# Spine3 Neck Head RightShoulder RightArm RightForeArm RightHand LeftShoulder ... LeftFoot).
# Note: the files are in inches.
_TOTCAP_JOINTS = _names("""
    pelv spin spin1 spin2 spin3 neck head rcla rsho relb rwri lcla lsho lelb lwri
    rhip rkne rank lhip lkne lank""")
_TOTCAP_EDGES = _mirrored('pelv-spin-spin1-spin2-spin3-neck-head,spin3-lcla-lsho-lelb-lwri,'
                          'pelv-lhip-lkne-lank')

# JTA: the 22 joints of the annotation json: head_top, head_center, neck, right_clavicle,
# right_shoulder, right_elbow, right_wrist, left ditto, spine0..spine4, right hip/knee/ankle,
# left ditto. spine4 is the lowest spine point.
_JTA_JOINTS = _names("""
    htop head neck rcla rsho relb rwri lcla lsho lelb lwri spin0 spin1 spin2 spin3 spin4
    rhip rkne rank lhip lkne lank""")
_JTA_EDGES = _mirrored('htop-head-neck-spin0-spin1-spin2-spin3-spin4,neck-lcla-lsho-lelb-lwri,'
                       'spin4-lhip-lkne-lank')

# Human4D: the 33 rows of Dump/gposes3d/*.npy. Rows 9 and 15 sit between the spine and each
# shoulder (the reference loader calls them neck3/neck4 and drops row 15); named as clavicles
# here so that flipping swaps them.
_HUMAN4D_JOINTS = _names("""
    pelv spin0 spin1 spin2 spin3 neck neck2 head htop
    rcla rsho relb rwri rpinkie rthu lcla lsho lelb lwri lpinkie lthu
    rhip rkne rank rfoo rtoe rtoe2 lhip lkne lank lfoo ltoe ltoe2""")
_HUMAN4D_EDGES = _mirrored('pelv-spin0-spin1-spin2-spin3-neck-neck2-head-htop,'
                           'spin3-lcla-lsho-lelb-lwri-lpinkie,lwri-lthu,'
                           'pelv-lhip-lkne-lank-lfoo-ltoe-ltoe2')

# 3DOH50K: 'lsp_joints_3d' in annots.json, the 14 LSP joints: right ankle, knee, hip, left hip,
# knee, ankle, right wrist, elbow, shoulder, left shoulder, elbow, wrist, neck, head top.
_TDOH_JOINTS = _names('rank rkne rhip lhip lkne lank rwri relb rsho lsho lelb lwri neck htop')
_TDOH_EDGES = _mirrored('htop-neck-lsho-lelb-lwri,lsho-lhip-lkne-lank,lhip-rhip')

# HSPACE (GHUM rig): the 63 'RIGGED_<i>/joints_3d' points per person in the tfrecords, order as
# in the reference loader (the HSPACE release does not list names). How the brow points connect
# is not documented; they hang off the head.
_GHUM_HAND = ('index1 index2 index3 middle1 middle2 middle3 ring1 ring2 ring3 '
              'pinkie1 pinkie2 pinkie3 thu1 thu2 thu').split()
_GHUM_JOINTS = (
    _names('pelv spin1 spin2 spin3 neck head head2 lbrow1 lbrow2 rbrow1 rbrow2 lbrow3 rbrow3')
    + _names('lcla lsho lelb lwri') + tuple(f'l{n}' for n in _GHUM_HAND)
    + _names('rcla rsho relb rwri') + tuple(f'r{n}' for n in _GHUM_HAND)
    + _names('lhip lkne lank lhee lfoo ltoe rhip rkne rank rhee rfoo rtoe'))
_GHUM_EDGES = _mirrored(
    'pelv-spin1-spin2-spin3-neck-head-head2,' + _star('head', 'lbrow1 lbrow2 lbrow3') + ','
    'spin3-lcla-lsho-lelb-lwri,lwri-lindex1-lindex2-lindex3,lwri-lmiddle1-lmiddle2-lmiddle3,'
    'lwri-lring1-lring2-lring3,lwri-lpinkie1-lpinkie2-lpinkie3,lwri-lthu1-lthu2-lthu,'
    'pelv-lhip-lkne-lank-lhee,lank-lfoo-ltoe')

# IKEA-ASM: pose3d/*.json 'pose_keypoints_3d', 17 keypoints in COCO order (order per the
# reference loader). Own tag as in DESIGN.md: how these 3D points were obtained differs from
# CMU-Panoptic's reconstruction, so they are not assumed to be the same points.
# MPII: the 16 joints of the MPII Human Pose annotation: right ankle, knee, hip, left hip, knee,
# ankle, pelvis, thorax, upper neck, head top, right wrist, elbow, shoulder, left shoulder, elbow,
# wrist. Own tag: hand-clicked hips/pelvis/thorax/upper-neck/head-top match no 3D convention.
_MPII_JOINTS = _names(
    'rank rkne rhip lhip lkne lank pelv thor neck htop rwri relb rsho lsho lelb lwri')
_MPII_EDGES = _mirrored('pelv-thor-neck-htop,thor-lsho-lelb-lwri,pelv-lhip-lkne-lank')

# JRDB-Pose (2D, labels_2d_pose_coco / labels_2d_pose_stitched_coco): the 17 keypoints of the
# files' person category, in their order: head, right eye, left eye, right shoulder, center
# shoulder, left shoulder, right elbow, left elbow, center hip, right wrist, right hip, left hip,
# left wrist, right knee, left knee, right foot, left foot. Names as in the reference loader
# (PosePile posepile/ds/jrdb/main.py): the 'head' point sits at the top of the head, the centre
# shoulder and hip are the neck and pelvis, the 'foot' points are at the ankles. Bones: the
# category's skeleton plus head top to each eye (the reference's 'htop-reye'). Own tag.
_JRDB_JOINTS = _names(
    'htop reye leye rsho neck lsho relb lelb pelv rwri rhip lhip lwri rkne lkne rank lank')
_JRDB_EDGES = _mirrored('htop-neck-pelv,htop-leye,neck-lsho-lelb-lwri,pelv-lhip-lkne-lank')
# PoseTrack 2018 (2D): the annotated 15 of its 17 COCO-order keypoints (the ear slots are
# placeholders, never annotated): nose, head_bottom, head_top, then shoulders ... ankles.
# head_bottom is the bottom of the head, MPII's 'upper neck' (PoseTrack inherits MPII's joints),
# hence 'neck'. Own tag (hand-clicked like MPII's, but another protocol).
_POSETRACK_JOINTS = _names(
    'nose neck htop lsho rsho lelb relb lwri rwri lhip rhip lkne rkne lank rank')
_POSETRACK_EDGES = _mirrored('nose-neck-htop,nose-htop,neck-lsho-lelb-lwri,lsho-lhip-lkne-lank,'
                             'lsho-rsho,lhip-rhip')


def _fmt(name, tag, joints, edges, **kwargs) -> tuple[str, SkeletonFormat]:
    return name, SkeletonFormat(name, tag, tuple(joints), edges, **kwargs)


# Registry order is union order: the union lists each format's new joints in this order.
REAL_FORMATS: dict[str, SkeletonFormat] = dict([
    _fmt('smpl', '', _SMPL_JOINTS, _SMPL_EDGES, source='SMPL model joint order'),
    _fmt('smplx', 'smplx', _SMPLX_JOINTS, _SMPLX_EDGES, source='SMPL-X model, 55 joints'),
    _fmt('h36m', 'h36m', _H36M_JOINTS, _H36M_EDGES, source='Human3.6M D3_Positions, 32 joints'),
    _fmt('sailvos', 'sailvos', _SAILVOS_JOINTS, _SAILVOS_EDGES, source='PosePile loader'),
    _fmt('coco', 'coco', _COCO19_JOINTS, _COCO19_EDGES, source='CMU-Panoptic joints19'),
    _fmt('3dhp', '3dhp', _TDHP_JOINTS, _TDHP_EDGES, source='MPI-INF-3DHP annot3, 28 joints'),
    _fmt('gpa', 'gpa', _GPA_JOINTS, _GPA_EDGES, source='PosePile loader'),
    _fmt('aspset', 'aspset', _ASPSET_JOINTS, _ASPSET_EDGES, source='ASPset-510 c3d'),
    _fmt('3dpeople', '3dpeople', _TDPEOPLE_JOINTS, _TDPEOPLE_EDGES,
         source='PosePile loader (selected rows)'),
    _fmt('bmlmovi', 'bmlmovi', _MOVI_JOINTS, _MOVI_EDGES, source='MoVi v3d markerLocation'),
    _fmt('mads', 'mads', _MADS_JOINTS, _MADS_EDGES, source='MADS GTpose2'),
    _fmt('umpm', 'umpm', _UMPM_JOINTS, _UMPM_EDGES, source='UMPM *_vm.c3d'),
    _fmt('bmhad', 'bmhad', _BMHAD_JOINTS, _BMHAD_EDGES, source='Berkeley MHAD c3d markers'),
    _fmt('totcap', 'totcap', _TOTCAP_JOINTS, _TOTCAP_EDGES, source='gt_skel_gbl_pos.txt header'),
    _fmt('jta', 'jta', _JTA_JOINTS, _JTA_EDGES, source='JTA annotation joints'),
    _fmt('ikea', 'ikea', _COCO17_JOINTS, _COCO17_EDGES, source='IKEA-ASM pose3d, COCO order'),
    _fmt('human4d', 'human4d', _HUMAN4D_JOINTS, _HUMAN4D_EDGES, source='Human4D gposes3d'),
    _fmt('3doh', '3doh', _TDOH_JOINTS, _TDOH_EDGES, source='3DOH50K lsp_joints_3d'),
    _fmt('ghum', 'ghum', _GHUM_JOINTS, _GHUM_EDGES, source='HSPACE joints_3d (PosePile order)'),
    _fmt('humbi', 'coco', _BODY25_JOINTS, _BODY25_EDGES, source='HUMBI keypoints.txt, BODY_25'),
    _fmt('coco17', 'coco', _COCO17_JOINTS, _COCO17_EDGES, parent='coco',
         source='COCO-17 order in 3D (AIST++ keypoints3d)'),
    _fmt('coco2d', 'coco', _COCO17_JOINTS, _COCO17_EDGES, parent='coco', is_2d=True,
         source='COCO keypoints'),
    _fmt('mpii', 'mpii', _MPII_JOINTS, _MPII_EDGES, is_2d=True, source='MPII Human Pose'),
    _fmt('jrdb', 'jrdb', _JRDB_JOINTS, _JRDB_EDGES, is_2d=True,
         source='JRDB-Pose labels_2d_pose_coco person keypoints'),
    _fmt('posetrack', 'posetrack', _POSETRACK_JOINTS, _POSETRACK_EDGES, is_2d=True,
         source='PoseTrack 2018 keypoints without the placeholder ears'),
    _fmt('h36m_17', 'h36m', _H36M_17_JOINTS, _H36M_17_EDGES, parent='h36m',
         source='H36M 17-joint protocol'),
    _fmt('h36m_25', 'h36m', _H36M_25_JOINTS, _H36M_25_EDGES, parent='h36m',
         source='Fit3D/CHI3D/HumanSC3D joints3d_25'),
    _fmt('smpl_24', '', _SMPL_JOINTS, _SMPL_EDGES, parent='smpl', source='3DPW, SMPL 24'),
    _fmt('mpi_inf_3dhp_17', '3dhp', _TDHP_17_JOINTS, _TDHP_17_EDGES, parent='3dhp',
         source='3DHP test univ_annot3'),
    _fmt('mupots_17', '3dhp', _TDHP_17_JOINTS, _TDHP_17_EDGES, parent='3dhp',
         source='MuPoTS-3D annot3'),
    _fmt('muco_21', '3dhp', _TDHP_21_JOINTS, _TDHP_21_EDGES, parent='3dhp',
         source='MuCo-3DHP.json of 3DMPPE (3DHP extended set)'),
])

# The paper's datasets (DESIGN.md) and the format each one's annotation files use. Keys are
# descriptive; a converter declares its own `SKELETON`. Fit3D, CHI3D and HumanSC3D (tag 'h36m')
# are missing: they ship a 25-joint subset of the H36M joints whose row order is not verified here.
DATASET_SKELETONS: dict[str, str] = {
    'surreal': 'smpl', 'agora': 'smpl', 'behave': 'smpl', 'spec': 'smpl', 'rich': 'smplx',
    'h36m': 'h36m', 'fit3d': 'h36m_25', 'chi3d': 'h36m_25', 'humansc3d': 'h36m_25',
    'sailvos': 'sailvos', 'panoptic': 'coco', 'aist': 'coco17', 'humbi': 'humbi',
    'muco': 'muco_21', 'mpi_inf_3dhp': '3dhp', 'mpi_inf_3dhp_full': '3dhp', 'gpa': 'gpa', 'aspset': 'aspset',
    'tdpeople': '3dpeople', 'bmlmovi': 'bmlmovi', 'mads': 'mads', 'umpm': 'umpm',
    'bmhad': 'bmhad', 'totcap': 'totcap', 'jta': 'jta', 'ikea': 'ikea',
    'human4d': 'human4d', 'tdoh': '3doh', 'hspace': 'ghum',
    'coco': 'coco2d', 'mpii': 'mpii', 'jrdb': 'jrdb', 'posetrack': 'posetrack',
    'h36m_test': 'h36m_17', 'tdpw': 'smpl_24', 'mpi_inf_3dhp_test': 'mpi_inf_3dhp_17',
    'mupots': 'mupots_17',
    'muco_composite': '3dhp',  # composites generated from raw 3DHP (annot3, 28 joints)
}
