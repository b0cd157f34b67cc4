"""eval.compare: the README's comparison table from benchmark report JSONs."""
import json

from eval import compare


def _report(path, **summary):
    path.write_text(json.dumps({'benchmark': 'synthetic', 'summary': summary}))
    return str(path)


def test_table_rows_and_cells(tmp_path, capsys):
    base = _report(tmp_path / 'a.json', mpjpe=100.04, pa_mpjpe=80.0, mpjpe_abs=300.0,
                   consistency_mm=50.0, consistency_depth_mm=40.0, consistency_plane_mm=20.0,
                   baseline_mpjpe=290.0, baseline_pa_mpjpe=150.0, baseline_mpjpe_abs=600.0,
                   baseline_consistency_mm=0.3, gt_consistency_floor_mm=0.8)
    other = _report(tmp_path / 'b.json', mpjpe=90.0, pa_mpjpe=70.0, mpjpe_abs=280.0)
    assert compare.main([f'base={base}', f'(b) latent={other}']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == '| base | 100.0 | 80.0 | 300.0 | 50.0 | 40.0 | 20.0 |'
    assert lines[3] == '| (b) latent | 90.0 | 70.0 | 280.0 | – | – | – |'
    assert lines[4] == '| mean-pose baseline | 290.0 | 150.0 | 600.0 | 0.3 | – | – |'
    assert lines[5] == '| ground truth (floor) | – | – | – | 0.8 | – | – |'
