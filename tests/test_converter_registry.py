"""Every converter module is registered with the skeleton it really emits."""
import pytest

from posepile import datasets, joints
from posepile.joints.skeletons import DATASET_SKELETONS

# `custom` reads its skeleton from the dataset (skeleton_of; tests/test_dataset_custom.py).
REAL_CONVERTERS = [n for n in datasets.available() if n not in ('synthetic', 'custom')]


@pytest.mark.parametrize('name', REAL_CONVERTERS)
def test_converter_skeleton_matches_registry(name):
    module = datasets.get_converter(name)
    assert DATASET_SKELETONS.get(name) == module.SKELETON, (
        f'posepile/datasets/{name}.py emits {module.SKELETON!r}; DATASET_SKELETONS says '
        f'{DATASET_SKELETONS.get(name)!r}')
    joints.get_skeleton(module.SKELETON)
    assert module.DESCRIPTION.strip()


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(KeyError, match='h36m'):
        datasets.get_converter('no_such_dataset')


def test_the_custom_converter_names_its_skeleton_per_dataset():
    module = datasets.get_converter('custom')
    assert module.SKELETON is None and callable(module.skeleton_of)
    assert module.DESCRIPTION.strip()
