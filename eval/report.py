"""Printing benchmark results as the paper's tables and writing them as JSON (atomically)."""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

from eval.benchmarks import BenchmarkResult, Table
from posepile.atomic_io import write_json_atomic


def _cell(value, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '–'
    return f'{value:.{decimals}f}'


def format_table(table: Table) -> str:
    """A plain-text table: metric rows, benchmark-specific columns, right-aligned numbers."""
    header = [''] + list(table.columns)
    body = [[label] + [_cell(v, table.decimals) for v in values]
            for label, values in table.rows.items()]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]

    def line(cells):
        return '  '.join([cells[0].ljust(widths[0])] +
                         [c.rjust(w) for c, w in zip(cells[1:], widths[1:])])

    rule = '-' * len(line(header))
    return '\n'.join([table.title, rule, line(header), rule, *map(line, body), rule])


def format_conventions(conventions: dict[str, str]) -> str:
    """'which convention these numbers follow' lines, one per choice."""
    width = max(map(len, conventions))
    return '\n'.join(['conventions:'] + [f'  {k.ljust(width)}  {v}' for k, v in conventions.items()])


def format_result(result: BenchmarkResult) -> str:
    """The conventions followed, all tables of a result, then the counts (missing GT joints,
    unused predictions...)."""
    parts = [format_conventions(result.conventions)] if result.conventions else []
    parts += [format_table(t) for t in result.tables]
    parts.append('counts: ' + ', '.join(f'{k}={v}' for k, v in result.counts.items()))
    return '\n\n'.join(parts)


def _jsonable(value: Any) -> Any:
    """Plain JSON types; NaN/inf become null (JSON has no NaN)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def result_to_json(result: BenchmarkResult) -> dict:
    return _jsonable(result)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes `data` as JSON atomically (NaN becomes null)."""
    write_json_atomic(path, _jsonable(data), indent=2, allow_nan=False)
