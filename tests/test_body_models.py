"""Body-model forward pass on tiny random models in the official npz layout.

The models have few vertices but the real joint counts and kinematic trees; references are
closed forms, scipy's rotations and a per-frame, per-joint loop written here.
"""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posepile import body_models
from posepile.dataset_writers.body_models import N_VERTS, model_arrays, write_model
from posepile.datasets.common import DatasetFormatError


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp('body_models')
    write_model(directory, 'smpl', 'neutral', seed=1)
    write_model(directory, 'smpl', 'male', seed=2, one_hot_joints=True)
    write_model(directory, 'smplh', 'female', seed=3, n_shape=16)
    write_model(directory, 'smplx', 'neutral', seed=4, n_shape=300, n_expr=100)
    write_model(directory, 'smplx', 'male', seed=5, n_shape=10, n_expr=10)
    return directory


def reference_forward(model, pose, betas, trans, expression=None):
    """Per-frame, per-joint loop: the textbook SMPL equations with scipy rotations."""
    verts, joints = [], []
    n_joints = model.n_joints
    for t in range(len(pose)):
        rots = Rotation.from_rotvec(pose[t].reshape(n_joints, 3)).as_matrix()
        shaped = model.v_template + model.shapedirs[:, :, :len(betas[t])] @ betas[t]
        if expression is not None:
            shaped = shaped + model.exprdirs[:, :, :len(expression[t])] @ expression[t]
        rest = model.J_regressor @ shaped
        glob = [None] * n_joints
        for k in range(n_joints):
            local = np.eye(4)
            local[:3, :3] = rots[k]
            parent = model.parents[k]
            local[:3, 3] = rest[k] - (rest[parent] if parent >= 0 else 0)
            glob[k] = local if parent < 0 else glob[parent] @ local
        feature = np.concatenate([(rots[k] - np.eye(3)).ravel() for k in range(1, n_joints)])
        posed = shaped + model.posedirs @ feature
        out = np.zeros_like(posed)
        for k in range(n_joints):
            moved = (glob[k][:3, :3] @ (posed - rest[k]).T).T + glob[k][:3, 3]
            out += model.weights[:, k:k + 1] * moved
        verts.append(out + trans[t])
        joints.append(np.stack([g[:3, 3] for g in glob]) + trans[t])
    return np.stack(verts), np.stack(joints)


def test_paths_and_loading(model_dir):
    assert body_models.body_model_path(model_dir, 'smplx', 'Female') == \
        model_dir / 'smplx' / 'SMPLX_FEMALE.npz'
    smpl = body_models.get_body_model(str(model_dir), 'smpl', 'neutral')
    assert smpl.parents.tolist() == list(body_models.OFFICIAL_PARENTS['smpl'])
    assert smpl.parents[0] == -1 and smpl.n_joints == 24 and smpl.n_vertices == N_VERTS
    assert [lv.tolist() for lv in smpl.depth_levels[:3]] == [[0], [1, 2, 3], [4, 5, 6]]
    new_x = body_models.get_body_model(str(model_dir), 'smplx', 'neutral')
    assert new_x.shapedirs.shape == (N_VERTS, 3, 300) and new_x.exprdirs.shape == (N_VERTS, 3, 100)
    old_x = body_models.get_body_model(str(model_dir), 'smplx', 'male')
    assert old_x.shapedirs.shape == (N_VERTS, 3, 10) and old_x.exprdirs.shape == (N_VERTS, 3, 10)
    smplh = body_models.get_body_model(str(model_dir), 'smplh', 'female')
    assert smplh.n_joints == 52 and set(smplh.hand_components) == {'left', 'right'}


def test_rotvec_matches_scipy():
    rotvecs = np.random.default_rng(0).normal(0, 1.5, (5, 7, 3))
    rotvecs[0, 0] = 0
    np.testing.assert_allclose(body_models.rotvec_to_matrix(rotvecs),
                               Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix()
                               .reshape(5, 7, 3, 3), atol=1e-12)


def test_rest_pose_gives_template(model_dir):
    model = body_models.get_body_model(str(model_dir), 'smpl', 'neutral')
    out = body_models.forward(model, np.zeros((2, 24, 3)))
    np.testing.assert_allclose(out.vertices, np.broadcast_to(model.v_template, (2, N_VERTS, 3)),
                               atol=1e-12)
    np.testing.assert_allclose(out.joints[0], model.J_regressor @ model.v_template, atol=1e-12)


def test_shape_blend_and_translation(model_dir):
    model = body_models.get_body_model(str(model_dir), 'smpl', 'neutral')
    betas = np.array([2.0, -1.0, 0.5])
    out = body_models.forward(model, np.zeros((1, 72)), betas=betas, trans=[1.0, 2.0, 3.0])
    shaped = model.v_template + model.shapedirs[:, :, :3] @ betas
    np.testing.assert_allclose(out.vertices[0], shaped + [1, 2, 3], atol=1e-12)
    np.testing.assert_allclose(out.joints[0], model.J_regressor @ shaped + [1, 2, 3], atol=1e-12)


def test_ninety_degree_elbow_moves_wrist(tmp_path):
    # One-hot regressor: joint k is vertex k, so joint positions are set by hand.
    arrays = model_arrays('smpl', one_hot_joints=True)
    arrays['shapedirs'][:] = 0
    arrays['v_template'][18] = [0.5, 1.4, 0.0]   # left elbow
    arrays['v_template'][20] = [0.75, 1.4, 0.0]  # left wrist, 0.25 m along +x
    path = tmp_path / 'SMPL_MALE.npz'
    np.savez(path, **arrays)
    model = body_models.load_body_model(path, 'smpl')
    pose = np.zeros((1, 24, 3))
    pose[0, 18] = [0, 0, np.pi / 2]  # 90 degrees about +z turns +x into +y
    joints = body_models.forward(model, pose, return_vertices=False).joints[0]
    np.testing.assert_allclose(joints[20], [0.5, 1.65, 0.0], atol=1e-12)
    np.testing.assert_allclose(joints[18], [0.5, 1.4, 0.0], atol=1e-12)
    rest = body_models.forward(model, np.zeros((1, 24, 3)), return_vertices=False).joints[0]
    np.testing.assert_allclose(np.delete(joints, [20, 22], axis=0),
                               np.delete(rest, [20, 22], axis=0), atol=1e-12)
    # The root turned by 90 degrees about +y maps (x, y, z) -> (z, y, -x) around the pelvis.
    pose[0, 0] = [0, np.pi / 2, 0]
    turned = body_models.forward(model, pose, return_vertices=False).joints[0]
    pelvis = rest[0]
    dx, dy, dz = np.array([0.5, 1.65, 0.0]) - pelvis
    expected = pelvis + [dz, dy, -dx]
    np.testing.assert_allclose(turned[20], expected, atol=1e-12)


def test_single_bone_weight_is_rigid(model_dir):
    model = body_models.get_body_model(str(model_dir), 'smpl', 'neutral')
    weights = np.zeros_like(model.weights)
    weights[:, 18] = 1.0
    rigid = body_models.BodyModel(
        kind='smpl', v_template=model.v_template, shapedirs=model.shapedirs,
        exprdirs=model.exprdirs, posedirs=np.zeros_like(model.posedirs),
        J_regressor=model.J_regressor, weights=weights, parents=model.parents, faces=model.faces)
    pose = np.random.default_rng(7).normal(0, 0.5, (3, 24, 3))
    out = body_models.forward(rigid, pose)
    rest_joints = model.J_regressor @ model.v_template
    for t in range(3):
        chain = [18, 16, 13, 9, 6, 3, 0]  # left elbow up to the pelvis
        rot = Rotation.identity()
        for k in reversed(chain):
            rot = rot * Rotation.from_rotvec(pose[t, k])
        expected = rot.apply(model.v_template - rest_joints[18]) + out.joints[t, 18]
        np.testing.assert_allclose(out.vertices[t], expected, atol=1e-10)


def test_pose_blend_shapes_vanish_at_rest(model_dir):
    model = body_models.get_body_model(str(model_dir), 'smpl', 'neutral')
    assert np.abs(model.posedirs).max() > 0
    betas = np.array([1.0, 0.5])
    out = body_models.forward(model, np.zeros((1, 24, 3)), betas=betas)
    np.testing.assert_allclose(out.vertices[0],
                               model.v_template + model.shapedirs[:, :, :2] @ betas, atol=1e-12)


@pytest.mark.parametrize('kind,gender', [('smpl', 'neutral'), ('smplh', 'female'),
                                         ('smplx', 'neutral')])
def test_vectorised_equals_loop_reference(model_dir, kind, gender):
    model = body_models.get_body_model(str(model_dir), kind, gender)
    rng = np.random.default_rng(11)
    n_frames = 3
    pose = rng.normal(0, 0.4, (n_frames, model.n_joints * 3))
    betas = rng.normal(0, 1, (n_frames, 8))
    trans = rng.normal(0, 1, (n_frames, 3))
    expression = rng.normal(0, 1, (n_frames, 5)) if kind == 'smplx' else None
    out = body_models.forward(model, pose, betas=betas, trans=trans, expression=expression)
    ref_verts, ref_joints = reference_forward(model, pose, betas, trans, expression)
    np.testing.assert_allclose(out.vertices, ref_verts, atol=1e-10)
    np.testing.assert_allclose(out.joints, ref_joints, atol=1e-10)
    assert out.joints.shape == (n_frames, body_models.MODEL_SIZES[kind][1], 3)


def test_hand_pca_and_regressor(model_dir):
    model = body_models.get_body_model(str(model_dir), 'smplx', 'neutral')
    coeffs = np.array([[1.0, -2.0, 0.5]])
    components, mean = model.hand_components['left']
    pose = body_models.hand_pca_to_pose(model, 'left', coeffs)
    np.testing.assert_allclose(pose.reshape(45), coeffs[0] @ components[:3] + mean)
    vertices = np.random.default_rng(0).normal(size=(2, N_VERTS, 3))
    regressor = np.zeros((2, N_VERTS))
    regressor[0, 3] = 1.0
    regressor[1, [4, 5]] = 0.5
    joints = body_models.regress_joints(vertices, regressor)
    np.testing.assert_allclose(joints[:, 0], vertices[:, 3])
    np.testing.assert_allclose(joints[:, 1], vertices[:, [4, 5]].mean(1))


def test_bad_model_files(tmp_path):
    arrays = model_arrays('smpl')
    del arrays['posedirs']
    np.savez(tmp_path / 'missing.npz', **arrays)
    with pytest.raises(DatasetFormatError, match=r"missing\.npz: missing field 'posedirs'"):
        body_models.load_body_model(tmp_path / 'missing.npz', 'smpl')
    arrays = model_arrays('smpl')
    arrays['weights'] = arrays['weights'][:, :23]
    np.savez(tmp_path / 'shape.npz', **arrays)
    with pytest.raises(DatasetFormatError,
                       match=r"shape\.npz: field 'weights' has shape \(40, 23\), "
                             r"expected \[40x24\]"):
        body_models.load_body_model(tmp_path / 'shape.npz', 'smpl')
    with pytest.raises(DatasetFormatError, match=r"shape\.npz: field 'kintree_table'"):
        body_models.load_body_model(tmp_path / 'shape.npz', 'smplx')
    (tmp_path / 'SMPL_NEUTRAL.pkl').write_bytes(b'\x80\x02}q\x00.')
    with pytest.raises(DatasetFormatError, match=r'SMPL_NEUTRAL\.pkl: body-model pickles'):
        body_models.load_body_model(tmp_path / 'SMPL_NEUTRAL.pkl', 'smpl')
    with pytest.raises(DatasetFormatError, match=r'missing file .*SMPLX_FEMALE\.npz'):
        body_models.get_body_model(str(tmp_path), 'smplx', 'female')
