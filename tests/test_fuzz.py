"""Fuzzing (hypothesis): camera maths with random valid parameters, malformed cameras, and the
converters' parsers fed random bytes / JSON / truncated files. Only documented errors may escape."""
import json
import pickle
import tempfile
import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from posepile import shards, tfrecord_schema
from posepile.camera import Camera
from posepile.datasets import _c3d, common, h36m, mpi_inf_3dhp, muco, panoptic, spec
from posepile.pandas_pickle import DataFramePickleError, load_dataframe
from posepile.safe_unpickle import UnsafePickleError, loads_pickle

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
FINITE = dict(allow_nan=False, allow_infinity=False)

# Errors a parser may document for bad input (DatasetFormatError is a ValueError).
PARSER_ERRORS = (common.DatasetFormatError, ValueError, KeyError)


@st.composite
def cameras(draw, distorted: bool):
    rotation = Rotation.from_quat(draw(st.lists(
        st.floats(-1, 1, **FINITE), min_size=4, max_size=4).filter(
        lambda q: np.linalg.norm(q) > 0.1))).as_matrix()
    focal = draw(st.floats(50, 5000))
    aspect = draw(st.floats(0.8, 1.25))
    K = [[focal, draw(st.floats(-2, 2)), draw(st.floats(0, 2000))],
         [0, focal * aspect, draw(st.floats(0, 2000))], [0, 0, 1]]
    distortion = None
    if distorted:
        distortion = [draw(st.floats(-0.3, 0.3)), draw(st.floats(-0.1, 0.1)),
                      draw(st.floats(-0.01, 0.01)), draw(st.floats(-0.01, 0.01)),
                      draw(st.floats(-0.05, 0.05))]
    center = draw(st.lists(st.floats(-5000, 5000), min_size=3, max_size=3))
    return Camera(center, rotation, K, distortion)


@FUZZ
@given(cameras(distorted=False), st.integers(0, 2 ** 32 - 1))
def test_pinhole_round_trips_are_finite_and_exact(camera, seed):
    rng = np.random.default_rng(seed)
    cam_points = rng.uniform([-2000, -2000, 100], [2000, 2000, 10000], (16, 3))
    world = camera.camera_to_world(cam_points)
    np.testing.assert_allclose(camera.world_to_camera(world), cam_points, atol=1e-6 * 1e4)
    image = camera.world_to_image(world)
    assert np.all(np.isfinite(image))
    back = camera.image_to_camera(image, depth=cam_points[:, 2])
    np.testing.assert_allclose(back, cam_points, rtol=1e-6, atol=1e-3)


@FUZZ
@given(cameras(distorted=True), st.integers(0, 2 ** 32 - 1))
def test_distorted_round_trip_is_exact_or_documented_nan(camera, seed):
    rng = np.random.default_rng(seed)
    cam_points = rng.uniform([-1000, -1000, 1000], [1000, 1000, 5000], (16, 3))
    image = camera.camera_to_image(cam_points)
    back = camera.image_to_camera(image, depth=cam_points[:, 2])
    # Beyond the distortion's fold-over radius the result is NaN by contract, never wrong.
    ok = np.all(np.isfinite(back), axis=1)
    np.testing.assert_allclose(back[ok], cam_points[ok], rtol=1e-5, atol=1e-2)
    undistorted = camera.undistort_points(camera.distort_points(image))
    assert undistorted.shape == image.shape


@FUZZ
@given(st.sampled_from(['optical_center', 'rot_world_to_cam', 'intrinsic_matrix',
                        'distortion_coeffs']),
       st.lists(st.integers(0, 5), min_size=0, max_size=3),
       st.sampled_from([0.0, np.nan, np.inf]))
def test_malformed_camera_parameters_raise_value_error(field, shape, fill):
    good_shapes = {'optical_center': [(3,)], 'rot_world_to_cam': [(3, 3)],
                   'intrinsic_matrix': [(3, 3)],
                   'distortion_coeffs': [(n,) for n in (4, 5, 8, 12, 14)]}
    if tuple(shape) in good_shapes[field] and np.isfinite(fill):
        return  # a valid parameter, not malformed
    with pytest.raises(ValueError, match=field):
        Camera(**{field: np.full(shape, fill)})


@FUZZ
@given(st.lists(st.lists(st.floats(-1e4, 1e4, **FINITE), min_size=1, max_size=4),
                min_size=1, max_size=4))
def test_malformed_point_shapes_raise_value_error(rows):
    camera = Camera()
    try:
        points = np.array(rows, dtype=np.float64)
    except ValueError:
        return  # ragged: numpy refuses before we get there
    if points.shape[-1] == 3:
        assert camera.world_to_image(points).shape == points.shape[:-1] + (2,)
    else:
        with pytest.raises(ValueError):
            camera.world_to_image(points)


# ----------------------------------------------------------------------------- the parsers
def _call_on_file(function, data: bytes, suffix: str, *args):
    with tempfile.TemporaryDirectory() as directory:
        path = pathlib.Path(directory) / f'input{suffix}'
        path.write_bytes(data)
        return function(path, *args)


def _json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10),
                        st.floats(**FINITE), st.text(max_size=5))
    return st.recursive(scalars, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children,
                                                        max_size=4)), max_leaves=12)


@FUZZ
@given(st.binary(max_size=300))
def test_h36m_load_poses_on_garbage_cdf(data):
    with pytest.raises(PARSER_ERRORS):
        _call_on_file(h36m.load_poses, data, '.cdf')


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_3dhp_parse_calibration_on_garbage(data):
    try:
        result = _call_on_file(mpi_inf_3dhp.parse_calibration, data, '.calib')
    except PARSER_ERRORS:
        return
    assert isinstance(result, dict)  # an empty or partial file may parse to no cameras


@FUZZ
@given(st.one_of(st.binary(max_size=200), _json_values().map(lambda v: json.dumps(v).encode())))
def test_panoptic_load_calibration_on_garbage(data):
    try:
        result = _call_on_file(panoptic.load_calibration, data, '.json')
    except PARSER_ERRORS:
        return
    assert isinstance(result, dict)


def _muco_annotation_like():
    """Dicts with MuCo-3DHP.json annotation keys holding random JSON values, sometimes valid."""
    value = st.one_of(_json_values(), st.lists(st.lists(st.floats(**FINITE), min_size=2,
                                                        max_size=3), min_size=20, max_size=22))
    keys = st.sampled_from(['keypoints_cam', 'keypoints_img', 'keypoints_vis', 'bbox', 'id',
                            'image_id', 'f', 'c', 'file_name', 'height', 'width'])
    return st.dictionaries(keys, value, max_size=8)


@FUZZ
@given(_muco_annotation_like())
def test_muco_json_records_on_garbage(record):
    for parse in (lambda: muco.parse_annotation(record, 'fuzz.json [annotation 0]'),
                  lambda: muco.load_images({'images': [record]}, pathlib.Path('fuzz.json'))):
        try:
            parse()
        except PARSER_ERRORS:
            pass


@FUZZ
@given(st.binary(max_size=400), st.integers(0, 3))
def test_spec_load_annotations_on_garbage(data, how):
    import io
    import zipfile
    if how == 1:  # a real zip (npz container) whose members are garbage
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, 'w') as archive:
            archive.writestr('imgname.npy', data)
            archive.writestr('pose.npy', data[::-1])
        data = buffer.getvalue()
    elif how == 2:  # valid npz, wrong shapes / dtypes
        buffer = io.BytesIO()
        rng = np.random.default_rng(len(data))
        np.savez(buffer, imgname=np.array(['a.png'] * 2), pose=rng.normal(size=(2, len(data) % 80)),
                 shape=rng.normal(size=(3, 10)))
        data = buffer.getvalue()
    with pytest.raises(PARSER_ERRORS):
        _call_on_file(spec.load_annotations, data, '.npz')


@FUZZ
@given(st.binary(max_size=2000), st.integers(0, 255))
def test_read_c3d_on_garbage(data, second_byte):
    # Byte 1 of a C3D file is the 0x50 signature; also try files that pass that first check.
    data = bytes([2, 0x50]) + data if second_byte % 2 else data
    with pytest.raises(PARSER_ERRORS):
        _call_on_file(_c3d.read_c3d, data, '.c3d')


@FUZZ
@given(st.binary(max_size=300))
def test_safe_unpickle_on_random_bytes(data):
    try:
        loads_pickle(data, source='fuzz.pkl')
    except (pickle.UnpicklingError, ValueError, KeyError, EOFError, TypeError, IndexError,
            AttributeError, UnicodeDecodeError, OverflowError, MemoryError):
        pass  # documented: pickle's own errors for malformed streams, UnsafePickleError for globals


@FUZZ
@given(st.binary(max_size=300))
def test_safe_unpickle_refuses_every_mutated_code_execution_pickle(suffix):
    import os
    evil = pickle.dumps(os.system, protocol=2)  # a reference to a global that runs commands
    with pytest.raises(pickle.UnpicklingError):
        loads_pickle(evil + suffix, source='evil.pkl')


_PANDAS_PICKLE = (pathlib.Path(__file__).parent / 'data' / 'pandas_pickles'
                  / 'table_pandas1.5.3.pkl').read_bytes()


@FUZZ
@given(st.integers(0, len(_PANDAS_PICKLE) - 1), st.binary(min_size=1, max_size=8),
       st.booleans())
def test_dataframe_pickle_reader_on_mutated_real_frames(position, patch, truncate):
    """A real pandas-written DataFrame pickle with bytes overwritten, or cut, at a random place:
    the inert reader either decodes something or raises its two documented errors."""
    data = (_PANDAS_PICKLE[:position] if truncate else
            _PANDAS_PICKLE[:position] + patch + _PANDAS_PICKLE[position + len(patch):])
    try:
        _call_on_file(load_dataframe, data, '.pkl')
    except (DataFramePickleError, UnsafePickleError):
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_decode_example_on_random_bytes(data):
    from google.protobuf.message import DecodeError
    with pytest.raises((DecodeError, KeyError, ValueError)):
        tfrecord_schema.decode_example(data, source='fuzz')


@FUZZ
@given(st.binary(max_size=400))
def test_check_shard_framing_on_random_bytes(data):
    try:
        count = _call_on_file(shards.check_shard_framing, data, '.tfrecord')
    except shards.CorruptShardError as error:
        assert 'input.tfrecord' in str(error)
        return
    assert count >= 0 and (count > 0 or not data)
