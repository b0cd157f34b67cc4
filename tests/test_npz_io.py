"""posepile/npz_io.py: every way a handed-in .npz can be wrong gets a message naming the file and
the real reason, never numpy's "allow_pickle" advice; and a CLI prints it as one line."""
import zipfile

import numpy as np
import pytest

from eval.predictions import load_predictions
from posepile.npz_io import read_npz


def test_a_good_archive_reads_back(tmp_path):
    path = tmp_path / 'ok.npz'
    np.savez(path, poses=np.arange(6.0).reshape(1, 2, 3), joint_names=np.array(['a', 'b']))
    data = read_npz(path, ('poses', 'joint_names'))
    np.testing.assert_array_equal(data['poses'], np.arange(6.0).reshape(1, 2, 3))
    assert data['joint_names'].tolist() == ['a', 'b']


def _text(path):
    path.write_text('sequence,frame\nseq0,1\n')


def _single_npy(path):
    with open(path, 'wb') as f:
        np.save(f, np.zeros(3))


def _truncated(path):
    np.savez(path, poses=np.zeros((50, 24, 3)))
    path.write_bytes(path.read_bytes()[:200])


def _objects(path):
    np.savez(path, poses=np.array([{'x': 1}], dtype=object))


def _not_npy_member(path):
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('poses.npy', b'this is not an npy header')


@pytest.mark.parametrize('make, reason', [
    (_text, r"not a predictions \.npz .*the file starts with b'sequence', not a zip archive"),
    (lambda p: p.write_bytes(b''), r'the file is empty'),
    (_single_npy, r'is a single \.npy array'),
    (_truncated, r'damaged or truncated zip archive'),
    (_objects, r"key 'poses' holds Python objects, which are never unpickled"),
    (_not_npy_member, r"member 'poses' is not an \.npy array"),
])
def test_what_is_wrong_is_said_with_the_file_name(tmp_path, make, reason):
    path = tmp_path / 'p.npz'
    make(path)
    with pytest.raises(ValueError, match=reason) as info:
        load_predictions(path)
    message = str(info.value)
    assert message.startswith(f'{path}: ') and 'allow_pickle' not in message


def test_missing_keys_path_and_directory_are_named(tmp_path):
    path = tmp_path / 'p.npz'
    np.savez(path, poses=np.zeros((1, 2, 3)))
    with pytest.raises(KeyError) as info:
        read_npz(path, ('poses', 'joint_names'), 'a poses .npz')
    assert info.value.args[0] == (f"{path}: missing keys ['joint_names'] (has ['poses']; "
                                  f'expected a poses .npz)')
    with pytest.raises(FileNotFoundError, match=f'{tmp_path}/nothing.npz: no such file'):
        read_npz(tmp_path / 'nothing.npz')
    with pytest.raises(IsADirectoryError, match=f'{tmp_path}: is a directory'):
        read_npz(tmp_path)


def test_a_cli_says_it_in_one_line(tmp_path, capsys):
    """The new user's case, a text file handed in as an .npz, through a command that reads it
    first (eval.run reads its --predictions the same way, after the benchmark's ground truth)."""
    from acae import train as acae_train
    path = tmp_path / 'p.npz'
    _text(path)
    assert acae_train.main([f'--poses={path}', f'--out={tmp_path}/acae']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'allow_pickle' not in err
    assert err.startswith(f'python -m acae.train: error: {path}: not a poses .npz')
