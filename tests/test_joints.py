"""Tests of the joint registry (posepile.joints) against published joint counts and orders."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
from scipy.sparse.csgraph import connected_components

import posepile.joints as joints

REPO_ROOT = Path(__file__).resolve().parents[1]
ALL_NAMES = joints.skeleton_names()
REAL_NAMES = joints.skeleton_names('real')
SYNTHETIC_NAMES = joints.skeleton_names('synthetic')


def n_components(n_joints: int, edges: np.ndarray) -> int:
    graph = scipy.sparse.coo_matrix(
        (np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_joints, n_joints))
    return connected_components(graph, directed=False)[0]


# Counts from each dataset's documentation / file format.
KNOWN_COUNTS = {
    'smpl': 24, 'smplx': 55, 'h36m': 32, 'coco': 19, '3dhp': 28, 'h36m_17': 17, 'h36m_25': 25,
    'mpi_inf_3dhp_17': 17, 'mupots_17': 17, 'muco_21': 21, 'smpl_24': 24, 'jta': 22, 'aspset': 17,
    'coco2d': 17, 'coco17': 17, 'mpii': 16, 'totcap': 21, 'umpm': 15, 'mads': 19, 'bmhad': 43,
    'bmlmovi': 87, 'humbi': 25, '3doh': 14, 'ikea': 17, 'gpa': 34, 'human4d': 33, 'ghum': 63,
    'sailvos': 26, '3dpeople': 29, 'jrdb': 17, 'posetrack': 15,
}


@pytest.mark.parametrize('name,count', sorted(KNOWN_COUNTS.items()))
def test_known_joint_counts(name, count):
    assert len(joints.get_skeleton(name)) == count


def test_every_real_format_has_a_known_count_and_design_tags_exist():
    assert set(REAL_NAMES) == set(KNOWN_COUNTS)
    design_tags = {'', 'smplx', 'h36m', 'sailvos', 'coco', '3dhp', 'gpa', 'aspset', '3dpeople',
                   'bmlmovi', 'mads', 'umpm', 'bmhad', 'totcap', 'jta', 'ikea', 'human4d', '3doh',
                   'ghum'}
    assert design_tags <= {joints.skeleton_tag(n) for n in REAL_NAMES}


@pytest.mark.parametrize('name', ALL_NAMES)
def test_names_unique_and_well_formed(name):
    names = joints.get_skeleton(name).names
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r'[a-z0-9]+', n) for n in names), names


@pytest.mark.parametrize('name', ALL_NAMES)
def test_mirror_perm_pairs_left_and_right(name):
    skeleton = joints.get_skeleton(name)
    perm = skeleton.mirror_perm
    np.testing.assert_array_equal(perm[perm], np.arange(len(skeleton)))
    for i, n in enumerate(skeleton.names):
        if n[0] in 'lr':
            # Every sided joint must have its counterpart, else flipping would not swap it.
            counterpart = {'l': 'r', 'r': 'l'}[n[0]] + n[1:]
            assert skeleton.names[perm[i]] == counterpart, (name, n)
        else:
            assert perm[i] == i, (name, n)


@pytest.mark.parametrize('name', ALL_NAMES)
def test_bones_are_mirror_symmetric(name):
    skeleton = joints.get_skeleton(name)
    edge_set = {frozenset(e) for e in skeleton.edges.tolist()}
    mirrored = {frozenset(e) for e in skeleton.mirror_perm[skeleton.edges].tolist()}
    assert mirrored == edge_set


@pytest.mark.parametrize('name', ALL_NAMES)
def test_bone_graph_connected(name):
    skeleton = joints.get_skeleton(name)
    assert n_components(len(skeleton), skeleton.edges) == 1


def test_real_union_has_one_component_per_tag():
    union = joints.get_union('real')
    tags = {joints.skeleton_tag(n) for n in REAL_NAMES}
    assert n_components(len(union), union.edges) == len(tags)


@pytest.mark.parametrize('name', [n for n in REAL_NAMES if joints.get_format(n).parent])
def test_subsets_are_subsets_of_parent(name):
    parent = joints.get_format(name).parent
    assert joints.skeleton_tag(name) == joints.skeleton_tag(parent)
    assert set(joints.get_skeleton(name).names) <= set(joints.get_skeleton(parent).names)
    assert set(joints.union_indices(name)) <= set(joints.union_indices(parent))


def test_h36m_25_subset_rows():
    # Fit3D/CHI3D/HumanSC3D joints3d_25 rows are these H36M D3_Positions rows.
    h36m = joints.get_skeleton('h36m')
    expected = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27, 4, 5, 9, 10, 21, 22,
                29, 30]
    np.testing.assert_array_equal(
        h36m.indices_of(joints.get_skeleton('h36m_25').names), expected)
    from posepile.datasets import _imar
    np.testing.assert_array_equal(_imar.H36M_INDICES, expected)


def test_protocol_subsets_pick_the_published_rows():
    # H36M's 17-joint protocol uses D3_Positions rows 0,1,2,3,6,7,8,12,13,14,15,17,18,19,25,26,27.
    h36m = joints.get_skeleton('h36m')
    np.testing.assert_array_equal(
        h36m.indices_of(joints.get_skeleton('h36m_17').names),
        [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])
    # The 3DHP test set's 17 joints are annot3 rows (1-based) 8,6,15,16,17,10,11,12,24,25,26,19,
    # 20,21,5,4,7 of the 28-joint set.
    tdhp = joints.get_skeleton('3dhp')
    one_based = [8, 6, 15, 16, 17, 10, 11, 12, 24, 25, 26, 19, 20, 21, 5, 4, 7]
    np.testing.assert_array_equal(
        tdhp.indices_of(joints.get_skeleton('mpi_inf_3dhp_17').names), np.array(one_based) - 1)
    assert joints.get_skeleton('mupots_17').names == joints.get_skeleton('mpi_inf_3dhp_17').names
    assert joints.get_skeleton('smpl_24').names == joints.get_skeleton('smpl').names


def test_hand_checked_orders():
    assert joints.get_skeleton('smpl').names[:4] == ('pelv', 'lhip', 'rhip', 'spi1')
    assert joints.get_skeleton('smpl').names[-2:] == ('lhan', 'rhan')
    coco19 = joints.get_skeleton('coco').names
    assert coco19[:3] == ('neck', 'nose', 'pelv')
    assert coco19[-4:] == ('leye', 'lear', 'reye', 'rear')
    coco17 = joints.get_skeleton('coco2d').names
    assert coco17[0] == 'nose' and coco17[5:7] == ('lsho', 'rsho') and coco17[-1] == 'rank'
    mpii = joints.get_skeleton('mpii').names
    assert mpii[6:10] == ('pelv', 'thor', 'neck', 'htop') and mpii[0] == 'rank'
    smplx = joints.get_skeleton('smplx').names
    assert smplx[:22] == joints.get_skeleton('smpl').names[:22]
    assert smplx[22:26] == ('jaw', 'leye', 'reye', 'lidx1') and smplx[40] == 'ridx1'


def test_union_names_and_split():
    assert joints.union_names('smpl')[:3] == ['pelv', 'lhip', 'rhip']
    assert joints.union_names('h36m')[:2] == ['pelv_h36m', 'rhip_h36m']
    assert joints.union_names('humbi')[:2] == ['nose_coco', 'neck_coco']
    for name in ALL_NAMES:
        tag = joints.skeleton_tag(name)
        for plain, full in zip(joints.get_skeleton(name).names, joints.union_names(name)):
            assert joints.split_union_name(full) == (plain, tag)


@pytest.mark.parametrize('which', joints.UNIONS)
def test_union_indices_point_at_the_right_names(which):
    union = joints.get_union(which)
    assert len(set(union.names)) == len(union.names)
    members = joints.skeleton_names(which)
    for name in members:
        idx = joints.union_indices(name, which)
        assert [union.names[i] for i in idx] == joints.union_names(name)
    covered = np.unique(np.concatenate([joints.union_indices(n, which) for n in members]))
    np.testing.assert_array_equal(covered, np.arange(len(union)))
    # The union's mirror permutation agrees with every member's own.
    for name in members:
        idx = joints.union_indices(name, which)
        np.testing.assert_array_equal(
            union.mirror_perm[idx], idx[joints.get_skeleton(name).mirror_perm])


def test_union_composition():
    real, synthetic, everything = (joints.get_union(w) for w in joints.UNIONS)
    assert everything.names == real.names + synthetic.names
    real_tags = {joints.skeleton_tag(n) for n in REAL_NAMES}
    assert not real_tags & set(SYNTHETIC_NAMES)
    assert all(joints.skeleton_tag(n) == n for n in SYNTHETIC_NAMES)
    expected_real = {f for n in REAL_NAMES for f in joints.union_names(n)}
    assert set(real.names) == expected_real
    # Shared tags share joints: COCO 2D keypoints and HUMBI land on CMU-Panoptic's joints.
    assert set(joints.union_indices('coco2d')) <= set(joints.union_indices('coco'))
    assert set(joints.union_indices('coco')) <= set(joints.union_indices('humbi'))
    assert len(set(joints.union_indices('humbi')) - set(joints.union_indices('coco'))) == 6
    with pytest.raises(KeyError, match='not part of'):
        joints.union_indices('h36m', 'synthetic')
    with pytest.raises(ValueError, match='union must be'):
        joints.get_union('everything')


def test_union_indices_are_cached_read_only():
    idx = joints.union_indices('h36m_17')
    assert not idx.flags.writeable
    assert joints.get_skeleton('h36m') is joints.get_skeleton('h36m')


def test_unknown_skeleton_raises_with_known_names():
    with pytest.raises(KeyError, match='h36m_17'):
        joints.get_skeleton('no_such_format')
    with pytest.raises(KeyError, match='unknown skeleton'):
        joints.skeleton_tag('nope')


def test_summary_cli_prints_union_sizes():
    result = subprocess.run(
        [sys.executable, '-m', 'posepile.joints', '--summary'], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120, check=True)
    sizes = dict(re.findall(r'^union (\w+): (\d+) joints', result.stdout, flags=re.M))
    assert int(sizes['real']) == len(joints.get_union('real'))
    assert int(sizes['synthetic']) == len(joints.get_union('synthetic'))
    assert int(sizes['all']) == len(joints.get_union('all'))
    h36m_row = re.search(r'^h36m\s+h36m\s+(\d+)\s+(\d+)', result.stdout, flags=re.M)
    assert h36m_row and int(h36m_row[1]) == 32 and int(h36m_row[2]) == 31


def test_registry_rejects_bad_names_and_returns_fresh_lists():
    bad = joints.SkeletonFormat('bad', 'bad', ('l_hip', 'pelv'), 'l_hip-pelv')
    with pytest.raises(ValueError, match="'l_hip'"):
        joints._validate(bad, 'somewhere.py')
    names = joints.skeleton_names()
    names.append('junk')
    assert 'junk' not in joints.skeleton_names()


def test_dataset_table_names_registered_formats():
    from posepile.joints.skeletons import DATASET_SKELETONS
    assert set(DATASET_SKELETONS.values()) <= set(REAL_NAMES)
    assert DATASET_SKELETONS['mupots'] == 'mupots_17' and DATASET_SKELETONS['humbi'] == 'humbi'
