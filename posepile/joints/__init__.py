"""Joint registry: every skeleton format by name, and the unions of their joints.

Union joint names are '<joint>_<tag>' ('<joint>' alone for the empty SMPL tag); formats that share
a tag share union joints. Three unions exist:
    'real':      all real-dataset formats, incl. 2D (COCO, MPII) and test-set formats (the
                 paper's union), then the user-registered formats (below);
    'synthetic': the synthetic world's formats (`posepile.synthetic.formats`);
    'all':       'real' followed by 'synthetic'.
Union order is registry order (`skeletons.REAL_FORMATS`, then the synthetic table), each format
appending the union joints not seen before. Union bones are the formats' bones.

User formats (a dataset of one's own; posepile/joints/user_skeletons.py): `register_skeleton`
adds a format from a definition file or dict at run time, so its joints join the union without
code edits. The files named by $POSEPILE_SKELETONS are registered in every process on first use;
posepile.build records the definitions of the user formats a build uses in its manifest, and
posepile.mix, the InputConfig, the training logdir and metrabs.export carry them on, so the mix,
the model and the export see the joints without the variable.

All lookups are cached; returned JointInfo objects are shared, treat them as read-only.
"""
from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping

import numpy as np

from posepile.joints import user_skeletons
from posepile.joints.joint_info import JointInfo, parse_edges
from posepile.joints.skeletons import REAL_FORMATS, SkeletonFormat

__all__ = [
    'JointInfo', 'SkeletonFormat', 'UNIONS', 'clear_user_skeletons', 'get_format',
    'get_skeleton', 'get_union', 'is_synthetic', 'is_user_format', 'register_skeleton',
    'skeleton_names', 'skeleton_tag', 'skeletons_covered', 'split_union_name',
    'three_d_union_names', 'union_indices', 'union_name', 'union_names',
    'user_skeleton_definitions',
]

UNIONS = ('real', 'synthetic', 'all')
_BASE_NAME = re.compile(r'^[a-z0-9]+$')


def union_name(joint: str, tag: str) -> str:
    """'<joint>_<tag>', or `joint` itself for the empty (SMPL) tag."""
    return f'{joint}_{tag}' if tag else joint


def split_union_name(name: str) -> tuple[str, str]:
    """Inverse of `union_name`: (base joint name, tag); the tag is '' for plain names."""
    joint, _, tag = name.partition('_')
    return joint, tag


@functools.cache
def _synthetic_formats() -> dict[str, SkeletonFormat]:
    # Imported lazily: the synthetic package belongs to another module and real-format lookups
    # must not depend on it.
    from posepile.synthetic.formats import SYNTHETIC_2D_SKELETONS, SYNTHETIC_SKELETONS
    result = {}
    for name, (joints, edges) in {**SYNTHETIC_SKELETONS, **SYNTHETIC_2D_SKELETONS}.items():
        if name in REAL_FORMATS or name in _real_tags():
            raise ValueError(
                f'posepile/synthetic/formats.py: synthetic format {name!r} collides with a real '
                f'format name or tag')
        result[name] = SkeletonFormat(name, name, tuple(joints), edges,
                                      is_2d=name in SYNTHETIC_2D_SKELETONS,
                                      source='posepile.synthetic.formats')
    for fmt in result.values():
        _validate(fmt, 'posepile/synthetic/formats.py')
    return result


@functools.cache
def _real_tags() -> frozenset[str]:
    return frozenset(fmt.tag for fmt in REAL_FORMATS.values())


def _validate(fmt: SkeletonFormat, where: str) -> None:
    bad = [j for j in fmt.joints if not _BASE_NAME.match(j)]
    if bad:
        raise ValueError(f'{where}: format {fmt.name!r} has joint names that are not lowercase '
                         f'alphanumeric without "_": {bad}')
    if '_' in fmt.tag:
        raise ValueError(f'{where}: format {fmt.name!r} has a tag with "_": {fmt.tag!r}')


@functools.cache
def _real_formats_checked() -> dict[str, SkeletonFormat]:
    for fmt in REAL_FORMATS.values():
        _validate(fmt, 'posepile/joints/skeletons.py')
        if fmt.parent is not None:
            parent = REAL_FORMATS[fmt.parent]
            missing = sorted(set(fmt.joints) - set(parent.joints))
            if missing or parent.tag != fmt.tag:
                raise ValueError(
                    f'posepile/joints/skeletons.py: {fmt.name!r} is declared a subset of '
                    f'{fmt.parent!r} but differs (joints not in parent: {missing}, '
                    f'tags {fmt.tag!r} vs {parent.tag!r})')
    return REAL_FORMATS


# ------------------------------------------------------------------------------- user formats
_USER_FORMATS: dict[str, SkeletonFormat] = {}
_ENVIRONMENT_LOADED = False


def _user_formats() -> dict[str, SkeletonFormat]:
    global _ENVIRONMENT_LOADED
    if not _ENVIRONMENT_LOADED:
        _ENVIRONMENT_LOADED = True
        for path in user_skeletons.files_from_environment():
            register_skeleton(path)
    return _USER_FORMATS


def _clear_caches() -> None:
    for cached in (_skeleton_names_tuple, get_skeleton, _union_names_tuple, get_union,
                   union_indices, three_d_union_names):
        cached.cache_clear()


def register_skeleton(spec: str | os.PathLike | Mapping | SkeletonFormat) -> SkeletonFormat:
    """Registers a user format from a definition file path, a definition dict or a
    SkeletonFormat (posepile/joints/user_skeletons.py) and returns it. Registering the same
    definition again is a no-op; another definition under a registered name is refused."""
    if isinstance(spec, SkeletonFormat):
        fmt = spec
    elif isinstance(spec, Mapping):
        fmt = user_skeletons.parse(spec)
    else:
        fmt = user_skeletons.load(spec)
    _validate(fmt, fmt.source)
    formats = _user_formats()
    existing = REAL_FORMATS.get(fmt.name) or formats.get(fmt.name)
    if existing is not None:
        if user_skeletons.to_definition(existing) | {'source': ''} != \
                user_skeletons.to_definition(fmt) | {'source': ''}:
            raise user_skeletons.SkeletonFileError(
                f'{fmt.source}: skeleton {fmt.name!r} is already registered ({existing.source}) '
                f'with other joints, tag or bones; give this one another name')
        return existing
    synthetic = _synthetic_formats()
    if fmt.name in synthetic or fmt.tag in synthetic:
        raise user_skeletons.SkeletonFileError(
            f'{fmt.source}: name {fmt.name!r} / tag {fmt.tag!r} collides with a synthetic format')
    formats[fmt.name] = fmt
    _clear_caches()
    return fmt


def is_user_format(name: str) -> bool:
    """True for formats registered at run time (register_skeleton / $POSEPILE_SKELETONS)."""
    return name in _user_formats()


def user_skeleton_definitions(names: Iterable[str] = ()) -> list[dict]:
    """Definition dicts of the user formats that have a union joint among `names` (e.g. the
    joint names of a build or a model), in registration order."""
    names = set(names)
    return [user_skeletons.to_definition(fmt) for fmt in _user_formats().values()
            if names & set(_union_names_tuple(fmt.name))]


def clear_user_skeletons() -> None:
    """Forgets every user format, also those of $POSEPILE_SKELETONS until the next lookup
    (tests use it to check that definitions really travel with the data)."""
    global _ENVIRONMENT_LOADED
    _USER_FORMATS.clear()
    _ENVIRONMENT_LOADED = False
    _clear_caches()


def skeleton_names(which: str = 'all') -> list[str]:
    """Registered format names of a union ('real', 'synthetic' or 'all'): real ones in registry
    order, then the synthetic ones."""
    return list(_skeleton_names_tuple(which))


@functools.cache
def _skeleton_names_tuple(which: str) -> tuple[str, ...]:
    _check_which(which)
    names = []
    if which in ('real', 'all'):
        names += list(_real_formats_checked()) + list(_user_formats())
    if which in ('synthetic', 'all'):
        names += list(_synthetic_formats())
    return tuple(names)


def get_format(name: str) -> SkeletonFormat:
    """The format's record (tag, joints, edges, parent, is_2d, source); KeyError if unknown."""
    real = _real_formats_checked()
    if name in real:
        return real[name]
    user = _user_formats()
    if name in user:
        return user[name]
    synthetic = _synthetic_formats()
    if name in synthetic:
        return synthetic[name]
    raise KeyError(f'unknown skeleton {name!r}; known: {", ".join(skeleton_names())}')


def is_synthetic(name: str) -> bool:
    """True for the synthetic world's formats; KeyError if unknown."""
    get_format(name)
    return name in _synthetic_formats()


def skeleton_tag(name: str) -> str:
    """The union tag of the format ('' for plain SMPL names)."""
    return get_format(name).tag


@functools.cache
def get_skeleton(name: str) -> JointInfo:
    """JointInfo of the format with its plain (base) joint names, in the dataset's order."""
    fmt = get_format(name)
    return JointInfo(fmt.joints, fmt.edges)


@functools.cache
def _union_names_tuple(name: str) -> tuple[str, ...]:
    fmt = get_format(name)
    return tuple(union_name(j, fmt.tag) for j in fmt.joints)


def union_names(name: str) -> list[str]:
    """The format's joints as union names ('<joint>_<tag>'), in the format's order."""
    return list(_union_names_tuple(name))


def _check_which(which: str) -> None:
    if which not in UNIONS:
        raise ValueError(f'union must be one of {UNIONS}, got {which!r}')


@functools.cache
def get_union(which: str = 'all') -> JointInfo:
    """The union JointInfo over the 'real', 'synthetic' or 'all' formats (see module doc)."""
    _check_which(which)
    names: dict[str, None] = {}  # insertion-ordered set
    edges: dict[frozenset[str], tuple[str, str]] = {}
    for skeleton in skeleton_names(which):
        fmt = get_format(skeleton)
        names.update(dict.fromkeys(_union_names_tuple(skeleton)))
        for a, b in parse_edges(fmt.edges):
            pair = (union_name(a, fmt.tag), union_name(b, fmt.tag))
            edges.setdefault(frozenset(pair), pair)
    return JointInfo(list(names), list(edges.values()))


@functools.cache
def union_indices(name: str, which: str = 'all') -> np.ndarray:
    """Int64 indices [J] of the format's joints (in its order) within the chosen union.

    Raises KeyError if the format is not part of that union (e.g. a real format in 'synthetic').
    The returned array is read-only (it is cached).
    """
    union = get_union(which)
    try:
        indices = union.indices_of(_union_names_tuple(name))
    except KeyError:
        raise KeyError(f'skeleton {name!r} is not part of the {which!r} union') from None
    indices.flags.writeable = False
    return indices


def skeletons_covered(union_joint_names: Iterable[str], which: str = 'all') -> list[str]:
    """The registered formats (registry order) all of whose union joints are among
    `union_joint_names`: the skeletons a set of examples, or a model's outputs, has in full."""
    present = frozenset(union_joint_names)
    return [name for name in skeleton_names(which) if present.issuperset(_union_names_tuple(name))]


@functools.cache
def three_d_union_names(which: str = 'all') -> tuple[str, ...]:
    """The union's joints that some 3D format labels, in union order.

    The others (e.g. the 16 '*_mpii' joints, labelled only by 2D-only MPII) would get no 3D
    supervision; a model predicts the 3D ones, and 2D-only labels supervise them by base name
    (metrabs.data.labels2d).
    """
    three_d = {n for skeleton in skeleton_names(which) if not get_format(skeleton).is_2d
               for n in _union_names_tuple(skeleton)}
    return tuple(n for n in get_union(which).names if n in three_d)
