"""Skeleton formats defined by a JSON file at run time: a user's own joints, no code edits.

File format (docs/ADDING_A_DATASET.md):
    {
      "name": "mylab",                        # registry name: [a-z0-9_]+, not a built-in one
      "tag": "mylab",                         # union tag, [a-z0-9]+ (default: the name without
                                              #   '_'); a built-in tag (e.g. "h36m") makes joints
                                              #   of the same name the SAME union joints
      "joints": ["pelv", "lhip", "rhip", ...],# base names in the order of the data's rows
      "pairs": [["lhip", "rhip"], ...],       # left/right counterparts (see below)
      "edges": [["pelv", "lhip"], ...],       # bones, as pairs or the chain string "a-b-c,d-e"
      "is_2d": false,                         # true: image-only annotations (a '2d' mix part)
      "source": "where the joint list comes from"
    }
Joint names follow the registry's rule (posepile/joints/skeletons.py): lowercase letters and
digits, no '_'; a left joint starts with 'l' and its right counterpart is the same name with 'r'
(lhip / rhip), because flipping augmentation swaps joints by that rule everywhere (the union's
mirror permutation is computed from names). "pairs" states the intended pairs explicitly and
is checked against the names both ways, so a pair the names do not express, or names that
would pair without being declared, are errors rather than silent mis-flips.

The union names of a format are '<joint>_<tag>'; user formats enter the 'real' union after the
built-in ones, so the built-in joints keep their union positions.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from posepile.joints.joint_info import mirror_name, parse_edges
from posepile.joints.skeletons import SkeletonFormat

_REGISTRY_NAME = re.compile(r'^[a-z0-9][a-z0-9_]*$')
_BASE_NAME = re.compile(r'^[a-z0-9]+$')
_KEYS = {'name', 'tag', 'joints', 'pairs', 'edges', 'is_2d', 'source'}
# Environment variable: skeleton files (or directories of *.json) registered in every process.
ENV_VAR = 'POSEPILE_SKELETONS'


class SkeletonFileError(ValueError):
    """A skeleton definition is malformed; the message names the file and the field."""


def parse(data: Any, source: str = '<dict>') -> SkeletonFormat:
    """A SkeletonFormat from a definition dict (module docstring), validated."""
    if not isinstance(data, Mapping):
        raise SkeletonFileError(f'{source}: a skeleton definition is a JSON object')
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise SkeletonFileError(f'{source}: unknown fields {unknown}; known: {sorted(_KEYS)}')
    for key in ('name', 'joints'):
        if key not in data:
            raise SkeletonFileError(f'{source}: missing field "{key}"')
    name = data['name']
    if not isinstance(name, str) or not _REGISTRY_NAME.match(name):
        raise SkeletonFileError(f'{source}: field "name" is {name!r}; use lowercase letters, '
                                f'digits and "_"')
    tag = data.get('tag', name.replace('_', ''))
    if not isinstance(tag, str) or not _BASE_NAME.match(tag):
        raise SkeletonFileError(f'{source}: field "tag" is {tag!r}; use lowercase letters and '
                                f'digits only (no "_": union names split at the first "_")')
    joints = data['joints']
    if not isinstance(joints, list) or not joints or not all(isinstance(j, str) for j in joints):
        raise SkeletonFileError(f'{source}: field "joints" must be a non-empty list of names')
    bad = [j for j in joints if not _BASE_NAME.match(j)]
    if bad:
        raise SkeletonFileError(f'{source}: field "joints": names {bad} are not lowercase '
                                f'letters and digits (no "_", no capitals)')
    duplicates = sorted({j for j in joints if joints.count(j) > 1})
    if duplicates:
        raise SkeletonFileError(f'{source}: field "joints" names {duplicates} more than once')
    known = set(joints)

    try:
        edges = parse_edges(data.get('edges', []))
    except (TypeError, ValueError) as error:
        raise SkeletonFileError(f'{source}: field "edges" must be [[a, b], ...] or "a-b-c,d-e" '
                                f'({error})') from None
    outside = sorted({j for pair in edges for j in pair if j not in known})
    if outside:
        raise SkeletonFileError(f'{source}: field "edges" uses joints not in "joints": {outside}')

    pairs = data.get('pairs', [])
    if not isinstance(pairs, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
        raise SkeletonFileError(f'{source}: field "pairs" must be [[left, right], ...]')
    declared = set()
    for left, right in pairs:
        if left not in known or right not in known:
            raise SkeletonFileError(f'{source}: field "pairs": [{left!r}, {right!r}] uses joints '
                                    f'not in "joints"')
        if not (left.startswith('l') and right == mirror_name(left)):
            raise SkeletonFileError(
                f'{source}: field "pairs": [{left!r}, {right!r}] must be named left = "l..." '
                f'and right = the same with "r" (e.g. "lwri", "rwri"): flipping pairs joints by '
                f'that rule; rename them in "joints" (and in "edges")')
        declared.add(left)
    implied = {j for j in joints if j.startswith('l') and mirror_name(j) in known}
    undeclared = sorted(implied - declared)
    if undeclared:
        raise SkeletonFileError(
            f'{source}: joints {[(j, mirror_name(j)) for j in undeclared]} pair up by their '
            f'names (l... / r...) but are not in "pairs": declare them, or rename them if they '
            f'are not left/right counterparts')
    is_2d = data.get('is_2d', False)
    if not isinstance(is_2d, bool):
        raise SkeletonFileError(f'{source}: field "is_2d" must be true or false')
    return SkeletonFormat(name, tag, tuple(joints), ','.join(f'{a}-{b}' for a, b in edges),
                          is_2d=is_2d, source=str(data.get('source', source)))


def load(path: str | os.PathLike) -> SkeletonFormat:
    """A skeleton definition file (module docstring)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise SkeletonFileError(f'missing skeleton file {path}')
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as error:
        raise SkeletonFileError(f'{path}: not valid JSON ({error})') from error
    return parse(data, str(path))


def to_definition(fmt: SkeletonFormat) -> dict[str, Any]:
    """The canonical definition dict of a format (what manifests and configs carry)."""
    edges = parse_edges(fmt.edges)
    return {'name': fmt.name, 'tag': fmt.tag, 'joints': list(fmt.joints),
            'pairs': [[j, mirror_name(j)] for j in fmt.joints
                      if j.startswith('l') and mirror_name(j) in fmt.joints],
            'edges': [list(e) for e in edges], 'is_2d': fmt.is_2d, 'source': fmt.source}


def files_from_environment(value: str | None = None) -> list[pathlib.Path]:
    """The skeleton files named by $POSEPILE_SKELETONS (os.pathsep-separated files, or
    directories whose *.json files are all taken, sorted)."""
    value = os.environ.get(ENV_VAR, '') if value is None else value
    files = []
    for item in filter(None, value.split(os.pathsep)):
        path = pathlib.Path(item)
        if path.is_dir():
            files += sorted(path.glob('*.json'))
        elif path.is_file():
            files.append(path)
        else:
            raise SkeletonFileError(f'{ENV_VAR} names {path}, which is neither a file nor a '
                                    f'directory')
    return files
