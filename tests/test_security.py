"""Security properties: no unrestricted unpickling of user data, no paths escaping a dataset root."""
import ast
import json
import os
import pathlib

import pytest

from posepile.datasets import coco, common

REPO = pathlib.Path(__file__).resolve().parents[1]
SCANNED_PACKAGES = ('posepile', 'metrabs', 'acae', 'eval')
# The one module allowed to drive pickle's machinery (its find_class admits plain data only).
RESTRICTED_UNPICKLER = pathlib.Path('posepile/safe_unpickle.py')
PICKLE_MODULES = {'pickle', '_pickle', 'cPickle', 'dill', 'joblib', 'cloudpickle'}


def _dotted(node: ast.AST) -> str | None:
    """'a.b.c' for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return '.'.join(reversed(parts))
    return None


def unsafe_pickle_uses(source: str, filename: str) -> list[str]:
    """'file:line: what' for every unpickling entry point in `source`.

    Flags: calls of pickle.load/loads/Unpickler (also under an alias or `from pickle import`),
    subclasses of pickle.Unpickler, np.load/numpy.load with allow_pickle set to anything but a
    literal False, and pandas.read_pickle.
    """
    tree = ast.parse(source, filename)
    aliases = {}  # local name -> dotted origin, from imports
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f'{node.module}.{a.name}'

    def resolve(node):
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition('.')
        head = aliases.get(head, head)
        return f'{head}.{rest}' if rest else head

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                target = resolve(base) or ''
                if target.split('.')[0] in PICKLE_MODULES and target.endswith('Unpickler'):
                    found.append(f'{filename}:{node.lineno}: class {node.name}({target})')
        if not isinstance(node, ast.Call):
            continue
        target = resolve(node.func) or ''
        module, _, func = target.rpartition('.')
        if module.split('.')[0] in PICKLE_MODULES and func in ('load', 'loads', 'Unpickler'):
            found.append(f'{filename}:{node.lineno}: {target}(...)')
        elif target in ('pandas.read_pickle', 'pd.read_pickle'):
            found.append(f'{filename}:{node.lineno}: {target}(...)')
        elif target in ('numpy.load', 'np.load'):
            for kw in node.keywords:
                if kw.arg == 'allow_pickle' and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f'{filename}:{node.lineno}: {target}(allow_pickle=...)')
    return found


def test_scanner_catches_every_form():
    source = '\n'.join([
        'import pickle', 'import pickle as pk', 'from pickle import loads as L, Unpickler',
        'import numpy as np', 'import numpy',
        'pickle.load(f)', 'pk.loads(b)', 'L(b)', 'Unpickler(f).load()',
        'np.load(p, allow_pickle=True)', 'numpy.load(p, allow_pickle=flag)',
        'np.load(p, allow_pickle=False)', 'np.load(p)', 'pickle.dumps(x)',
        'class U(pickle.Unpickler): pass'])
    found = unsafe_pickle_uses(source, 'x.py')
    lines = sorted(int(f.split(':')[1]) for f in found)
    # Lines 6-11 and the class on 15 are unpickling; np.load without pickle and dumps are not.
    assert lines == [6, 7, 8, 9, 10, 11, 15], found


def test_no_unrestricted_unpickling_in_the_source_tree():
    offenders = []
    n_files = 0
    for package in SCANNED_PACKAGES:
        for path in sorted((REPO / package).rglob('*.py')):
            relative = path.relative_to(REPO)
            if relative == RESTRICTED_UNPICKLER:
                continue
            n_files += 1
            offenders += unsafe_pickle_uses(path.read_text(encoding='utf-8'), str(relative))
    assert n_files > 50  # the scan did look at the tree
    assert not offenders, 'unpickling outside posepile/safe_unpickle.py:\n' + '\n'.join(offenders)


def test_restricted_unpickler_is_the_only_allowed_user():
    source = (REPO / RESTRICTED_UNPICKLER).read_text(encoding='utf-8')
    assert unsafe_pickle_uses(source, str(RESTRICTED_UNPICKLER))  # it does unpickle, and is exempt


@pytest.fixture(scope='module')
def jail(tmp_path_factory):
    """A dataset root with a file inside, a secret outside, and symlinks pointing in and out."""
    base = tmp_path_factory.mktemp('jail')
    root = base / 'root'
    (root / 'images').mkdir(parents=True)
    (root / 'images' / 'a.jpg').write_bytes(b'x')
    (base / 'secret.txt').write_text('secret')
    os.symlink(base / 'secret.txt', root / 'images' / 'link_out.jpg')
    os.symlink(base, root / 'dir_out')
    os.symlink(root / 'images' / 'a.jpg', root / 'link_in.jpg')
    return root


@pytest.mark.parametrize('relative', [
    '../secret.txt', 'images/../../secret.txt', '..', 'images/../../root/../secret.txt',
    '..\\secret.txt',  # Windows separators in annotation files are normalised, then refused
    'images/link_out.jpg', 'dir_out/secret.txt'])
def test_safe_path_refuses_escapes(jail, relative):
    with pytest.raises(common.DatasetFormatError, match='escapes the dataset root') as error:
        common.safe_path(jail, relative, source='ann.json')
    assert 'ann.json' in str(error.value)


@pytest.mark.parametrize('relative', ['/etc/passwd', '/' + 'x/../etc'])
def test_safe_path_refuses_absolute_paths(jail, relative):
    with pytest.raises(common.DatasetFormatError, match='must be relative'):
        common.safe_path(jail, relative, source='ann.json')


def test_safe_path_accepts_paths_inside(jail):
    assert common.safe_path(jail, 'images/a.jpg') == (jail / 'images' / 'a.jpg').resolve()
    assert common.safe_path(jail, 'images/../images/./a.jpg') == (jail / 'images/a.jpg').resolve()
    # A symlink whose target stays inside the root is fine.
    assert common.safe_path(jail, 'link_in.jpg') == (jail / 'images' / 'a.jpg').resolve()


def _coco_root(base: pathlib.Path, file_name: str) -> pathlib.Path:
    """The smallest COCO layout the converter accepts, with one image entry named `file_name`."""
    root = base / f'coco_{abs(hash(file_name))}'
    (root / 'val2017').mkdir(parents=True)
    (root / 'annotations').mkdir()
    keypoints = []
    for i in range(coco.N_KEYPOINTS):
        keypoints += [40.0 + i, 30.0 + 2 * i, 2]
    data = {
        'images': [{'id': 7, 'file_name': file_name, 'height': 120, 'width': 160}],
        'annotations': [{'id': 1, 'image_id': 7, 'category_id': 1, 'iscrowd': 0,
                         'keypoints': keypoints, 'bbox': [30.0, 20.0, 60.0, 80.0],
                         'segmentation': [[30.0, 20.0, 90.0, 20.0, 90.0, 100.0, 30.0, 100.0]]}],
        'categories': [{'id': 1, 'name': 'person', 'keypoints': list(coco.COCO_KEYPOINT_NAMES)}]}
    (root / 'annotations' / 'person_keypoints_val2017.json').write_text(json.dumps(data))
    return root


@pytest.mark.parametrize('file_name', ['../../../etc/passwd', '/etc/passwd',
                                       '../train2017/000000000001.jpg'])
def test_converter_refuses_annotation_paths_escaping_the_root(tmp_path, file_name):
    root = _coco_root(tmp_path, file_name)
    with pytest.raises(common.DatasetFormatError,
                       match=r'person_keypoints_val2017\.json.*(escapes|must be relative)'):
        list(coco.convert(root, splits=['validation']))


def test_converter_accepts_the_same_annotation_with_a_safe_path(tmp_path):
    root = _coco_root(tmp_path, '000000000007.jpg')
    (example,) = coco.convert(root, splits=['validation'])
    assert example.image == str((root / 'val2017' / '000000000007.jpg').resolve())
