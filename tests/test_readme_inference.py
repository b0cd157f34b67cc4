"""The README's "Using an exported model" snippet, as written, on a real photograph (NASA's
public-domain astronaut portrait, tests/data/astronaut_256.md) and on a synthetic-world test
image: a pose comes back for the one person, in the skeleton asked for, and the box it came
from gives the same pose through estimate_poses."""
import os
import pathlib
import shutil

import numpy as np
import pytest

import fixture_tiny_model as tiny
from posepile.synthetic.ground_truth import load_test_ground_truth

pytestmark = pytest.mark.slow
PHOTO = pathlib.Path(__file__).parent / 'data' / 'astronaut_256.jpg'


@pytest.fixture(scope='module')
def synthetic_image(synthetic_world):
    return pathlib.Path(load_test_ground_truth(synthetic_world).image_paths[0])


@pytest.mark.parametrize('which', ['photo', 'synthetic'])
def test_snippet_finds_the_person(which, exported, synthetic_image, tmp_path):
    _, _, model_dir = exported
    (tmp_path / 'out' / 'models').mkdir(parents=True)
    (tmp_path / 'out' / 'models' / 'separate_heads').symlink_to(model_dir)
    shutil.copy(PHOTO if which == 'photo' else synthetic_image, tmp_path / 'photo.jpg')
    snippet = tiny.readme_blocks('python')[0]
    assert snippet.startswith('import imageio.v3 as iio') and 'load_model(' in snippet
    namespace = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(snippet, 'README.md', 'exec'), namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
    image = namespace['image']
    assert namespace['boxes'].shape == (1, 5)  # the whole image: one person, no detector
    np.testing.assert_array_equal(namespace['boxes'][0], [0, 0, image.shape[1],
                                                          image.shape[0], 1])
    poses3d = namespace['poses3d']
    assert poses3d.shape == (1, 17, 3) and np.all(np.isfinite(poses3d))
    assert len(namespace['names']) == 17 and namespace['edges'].shape[1] == 2
    assert namespace['plausible'].shape == (1,) and namespace['plausible'].dtype == bool
    assert namespace['model'].skeleton_names[0] == ''
    # The detect_poses box through estimate_poses: the same person, the same pose (5 TTA
    # augmentations each, averaged, so equal up to float reordering).
    again = namespace['model'].estimate_poses(image, namespace['boxes'],
                                              intrinsic_matrix=namespace['K'],
                                              skeleton='h36m_17')['poses3d'].numpy()
    np.testing.assert_allclose(again, poses3d, atol=1e-2)
