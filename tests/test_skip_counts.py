"""skip_counts: converters' deliberate drops reach the counter only inside recording_skips()."""
from collections import Counter

from posepile.datasets.skip_counts import count_skipped, recording_skips, skipped_by_dataset


def _converter():
    for i in range(5):
        if i % 2:
            count_skipped('toy', 'odd frame')
            continue
        yield i
    count_skipped('toy', 'tail', n=3)


def test_generator_consumed_inside_block_is_counted():
    with recording_skips() as counts:
        kept = list(_converter())
    assert kept == [0, 2, 4]
    assert counts == Counter({('toy', 'odd frame'): 2, ('toy', 'tail'): 3})
    assert skipped_by_dataset(counts) == {'toy': {'odd frame': 2, 'tail': 3}}


def test_outside_a_block_nothing_is_recorded_and_blocks_do_not_leak():
    assert list(_converter()) == [0, 2, 4]  # no error without a recorder
    with recording_skips() as outer:
        count_skipped('a', 'r')
        with recording_skips() as inner:
            count_skipped('b', 'r', n=2)
        count_skipped('a', 'r')
    assert outer == Counter({('a', 'r'): 2})
    assert inner == Counter({('b', 'r'): 2})
