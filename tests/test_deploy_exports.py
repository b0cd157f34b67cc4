"""The ONNX and TFLite crop models (written by the README's export commands, see the
`deployment_workspace` fixture) run through onnxruntime and the TFLite interpreter (LiteRT) and
agree with the SavedModel's predict_crops; the sidecar JSON; the checkpoint -> TFLite path."""
import json

import numpy as np
import pytest

from fixture_tiny_model import SIDE, joint_names
from metrabs import export as export_cli
from metrabs.serving import crop_model_export

pytestmark = pytest.mark.slow
# Stated tolerances (README "Deployment"): float32 converters reorder float operations only;
# float16 rounds every weight to 11 significant bits.
FLOAT32_MM, FLOAT32_PX = 0.05, 0.01
FLOAT16_MM, FLOAT16_PX = 2.0, 0.2


def _crops(n, seed=2):
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (n, SIDE, SIDE, 3)).astype(np.uint8)
    intr = np.tile(np.array([[80.0, 0, 31.5], [0, 80, 31.5], [0, 0, 1]], np.float32), (n, 1, 1))
    intr[:, 0, 0] += np.arange(n) * 10
    intr[:, 1, 1] += np.arange(n) * 7
    return crops, intr


def _reference(exported, crops, intr):
    _, loaded, _ = exported
    out = loaded.signatures['serving_default'](images=crops, intrinsics=intr)
    return out['poses3d'].numpy(), out['poses2d'].numpy()


def _assert_close(got3d, got2d, want3d, want2d, mm, px):
    assert np.abs(want3d).max() > 100 and np.ptp(want2d, axis=1).max() > 1  # not degenerate
    assert np.abs(got3d - want3d).max() <= mm
    assert np.abs(got2d - want2d).max() <= px


def test_onnx_runtime_matches_the_saved_model(deployment_workspace, exported):
    import onnxruntime as ort
    session = ort.InferenceSession(str(deployment_workspace / 'out/models/separate_heads.onnx'),
                                   providers=['CPUExecutionProvider'])
    assert {i.name for i in session.get_inputs()} == {'images', 'intrinsics'}
    for n in (1, 5):  # the batch is dynamic
        crops, intr = _crops(n)
        poses3d, poses2d = session.run(['poses3d', 'poses2d'],
                                       {'images': crops, 'intrinsics': intr})
        _assert_close(poses3d, poses2d, *_reference(exported, crops, intr), FLOAT32_MM,
                      FLOAT32_PX)


@pytest.mark.parametrize('name, mm, px', [('separate_heads.tflite', FLOAT32_MM, FLOAT32_PX),
                                          ('separate_heads_fp16.tflite', FLOAT16_MM, FLOAT16_PX)])
def test_tflite_interpreter_matches_the_saved_model(deployment_workspace, exported, name, mm, px):
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(deployment_workspace / 'out/models' / name))
    assert interpreter.get_signature_list() == {'serving_default': {
        'inputs': ['images', 'intrinsics'], 'outputs': ['poses2d', 'poses3d']}}
    runner = interpreter.get_signature_runner('serving_default')
    for n in (1, 4):
        crops, intr = _crops(n, seed=n)
        out = runner(images=crops, intrinsics=intr)
        _assert_close(out['poses3d'], out['poses2d'], *_reference(exported, crops, intr), mm, px)
    ops = {op['op_name'] for op in interpreter._get_ops_details()}
    assert not any('FLEX' in op or 'CUSTOM' in op for op in ops), ops  # builtin ops only


def test_sidecar_describes_joints_and_skeletons(deployment_workspace, exported):
    _, loaded, _ = exported
    info = json.loads((deployment_workspace / 'out/models/separate_heads.onnx.json').read_text())
    assert info['input_resolution'] == SIDE and info['joint_names'] == joint_names()
    np.testing.assert_array_equal(info['joint_edges'], loaded.joint_edges.numpy())
    assert set(info['skeleton_indices']) == set(loaded.per_skeleton_joint_names)
    for skeleton, indices in info['skeleton_indices'].items():
        # Per-skeleton names are the registry's short names; the model's are union names
        # '<joint>_<tag>' in the same order.
        short = [n.decode() for n in loaded.per_skeleton_joint_names[skeleton].numpy()]
        assert len(indices) == len(short)
        assert [info['joint_names'][i].split('_')[0] for i in indices] == [
            n.split('_')[0] for n in short]
    tflite = json.loads(
        (deployment_workspace / 'out/models/separate_heads.tflite.json').read_text())
    assert tflite == info


def test_tflite_float16_from_a_checkpoint(tiny_logdir, exported, tmp_path, capsys):
    root, _ = tiny_logdir
    out = tmp_path / 'crop16.tflite'
    export_cli.main([f'--checkpoint={root}', '--format=tflite', '--precision=float16',
                     f'--out={out}'])
    assert 'as tflite' in capsys.readouterr().out
    from ai_edge_litert.interpreter import Interpreter
    runner = Interpreter(model_path=str(out)).get_signature_runner()
    crops, intr = _crops(3)
    got = runner(images=crops, intrinsics=intr)
    _assert_close(got['poses3d'], got['poses2d'], *_reference(exported, crops, intr),
                  FLOAT16_MM, FLOAT16_PX)
    assert crop_model_export.sidecar_path(out).exists()


@pytest.mark.parametrize('args, message', [
    (['--savedmodel=x', '--out=y'], '--savedmodel is a source for'),
    (['--checkpoint=x', '--out=y', '--precision=float16'], '--precision applies to'),
    (['--checkpoint=x', '--out=y', '--format=onnx', '--detector=d'], '--detector applies to'),
    (['--savedmodel=x', '--out=y', '--format=onnx', '--bone-stats=b'], 'part of the SavedModel'),
])
def test_export_cli_refuses_contradictory_options(args, message, capsys):
    assert export_cli.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1
