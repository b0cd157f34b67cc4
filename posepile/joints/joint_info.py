"""JointInfo: an ordered joint set with bones and its left/right mirror permutation."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def parse_edges(edges: str | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Accepts bones as name pairs or as compact chains, e.g. 'htop-head-neck,lsho-neck-rsho'.

    The chain form keeps the skeleton tables short and readable: 'a-b-c' means bones a-b and b-c.
    """
    if isinstance(edges, str):
        pairs = []
        for chain in filter(None, (c.strip() for c in edges.split(','))):
            parts = chain.split('-')
            pairs.extend(zip(parts[:-1], parts[1:]))
        return pairs
    return [(str(a), str(b)) for a, b in edges]


def mirror_name(name: str) -> str:
    """Name of the left/right counterpart by the 'l'/'r' prefix convention (may not exist in a set)."""
    if name.startswith('l'):
        return 'r' + name[1:]
    if name.startswith('r'):
        return 'l' + name[1:]
    return name


class JointInfo:
    """An ordered set of named joints, with bones (edges) and the left/right swap.

    Names follow the convention that a left joint starts with 'l' and its right counterpart with
    'r' (e.g. 'lhip'/'rhip', 'lhip_h36m'/'rhip_h36m'). A name is treated as sided only when its
    counterpart is also in the set, so e.g. 'rear' without 'lear' stays unpaired (centre).
    """

    def __init__(self, names: Sequence[str], edges: str | Iterable[tuple[str, str]] = ()):
        self.names: tuple[str, ...] = tuple(str(n) for n in names)
        if len(set(self.names)) != len(self.names):
            dups = sorted({n for n in self.names if self.names.count(n) > 1})
            raise ValueError(f'JointInfo: duplicate joint names {dups}')
        self.ids: dict[str, int] = {n: i for i, n in enumerate(self.names)}
        pairs = parse_edges(edges)
        unknown = sorted({n for pair in pairs for n in pair if n not in self.ids})
        if unknown:
            raise ValueError(f'JointInfo: edges name unknown joints {unknown}')
        self.edges: np.ndarray = np.array(
            [(self.ids[a], self.ids[b]) for a, b in pairs], dtype=np.int64).reshape(-1, 2)
        self.mirror_perm: np.ndarray = np.array(
            [self.ids.get(mirror_name(n), i) for i, n in enumerate(self.names)], dtype=np.int64)

    @property
    def n_joints(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f'JointInfo({self.n_joints} joints, {len(self.edges)} edges)'

    @property
    def edge_names(self) -> list[tuple[str, str]]:
        return [(self.names[a], self.names[b]) for a, b in self.edges]

    def indices_of(self, names: Iterable[str]) -> np.ndarray:
        """Indices of `names` in this set; raises naming every unknown joint."""
        names = list(names)
        missing = [n for n in names if n not in self.ids]
        if missing:
            raise KeyError(f'joints not in this set: {missing}')
        return np.array([self.ids[n] for n in names], dtype=np.int64)

    def select(self, names: Iterable[str]) -> tuple[JointInfo, np.ndarray]:
        """Subset with the given names in the given order, keeping the bones among them.

        Returns (sub JointInfo, indices into this set).
        """
        names = list(names)
        indices = self.indices_of(names)
        chosen = set(names)
        sub_edges = [(a, b) for a, b in self.edge_names if a in chosen and b in chosen]
        return JointInfo(names, sub_edges), indices

    def mirror(self, coords: np.ndarray, axis: int = -2) -> np.ndarray:
        """Swaps left and right joints along `axis` (the joint axis; [..., J, D] by default).

        Only relabels; flipping the coordinates themselves is the camera's job.
        """
        return np.take(np.asarray(coords), self.mirror_perm, axis=axis)
