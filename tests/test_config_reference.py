"""docs/CONFIGURATION.md is generated from the code that reads the mix and training JSON files
(metrabs.config_reference), so it cannot drift: this test fails when they disagree."""
import dataclasses
import pathlib

import pytest

from metrabs import config_reference
from metrabs.training.config import TrainConfig
from posepile import mix

DOC = pathlib.Path(__file__).resolve().parents[1] / 'docs' / 'CONFIGURATION.md'


def test_the_committed_reference_is_the_generated_one():
    assert DOC.read_text(encoding='utf-8') == config_reference.render(), (
        'docs/CONFIGURATION.md is stale: python -m metrabs.config_reference > '
        'docs/CONFIGURATION.md')


def test_every_field_a_reader_accepts_is_in_the_reference():
    text = DOC.read_text(encoding='utf-8')
    for name in [*mix.MIX_FIELDS, *mix.MIX_ENTRY_FIELDS,
                 *(f.name for f in dataclasses.fields(TrainConfig))]:
        assert f'| `{name}` |' in text, name
    # The mix keys documented are exactly those parse_mix accepts.
    with pytest.raises(KeyError, match=r"unknown mix fields \['examples'\]"):
        mix.parse_mix({'examples': 3, 'datasets': [
            {'name': 'a', 'kind': '3d', 'examples_per_batch': 1}]})
    with pytest.raises(KeyError, match=r"unknown fields \['share'\]"):
        mix.parse_mix({'datasets': [{'name': 'a', 'kind': '3d', 'examples_per_batch': 1,
                                     'share': 0.5}]})


def test_attribute_sections_are_parsed_and_gaps_refused():
    @dataclasses.dataclass
    class Example:
        """One line.

        Attributes:
            a: the first
                field, on two lines.
            b, c: two at once.
        """
        a: int = 1
        b: str = 'x'
        c: tuple = (1, 2)
        d: float | None = None

    assert config_reference.attribute_docs(Example) == {
        'a': 'the first field, on two lines.', 'b': 'two at once.', 'c': 'two at once.'}
    with pytest.raises(ValueError, match=r"fields without a description.*\['d'\]"):
        config_reference.dataclass_table(Example)
    rows = config_reference.dataclass_table(Example, skip={'d'})
    assert rows[2] == '| `a` | `int` | `1` | the first field, on two lines. |'
    assert rows[4] == '| `c` | `tuple` | `[1, 2]` | two at once. |'


def test_check_flag(tmp_path, capsys):
    assert config_reference.main([f'--check={DOC}']) == 0
    stale = tmp_path / 'CONFIGURATION.md'
    stale.write_text(DOC.read_text() + 'edited by hand\n')
    assert config_reference.main([f'--check={stale}']) == 1
    assert 'regenerate it with python -m metrabs.config_reference' in capsys.readouterr().err
