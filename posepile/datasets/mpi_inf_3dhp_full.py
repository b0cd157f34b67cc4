"""MPI-INF-3DHP training set with all 14 cameras (incl. the ceiling ones): the 'full' variant.

Same layout, joints, units and split as `posepile.datasets.mpi_inf_3dhp` (see its docstring);
this name exists so `python -m posepile.build --dataset=mpi_inf_3dhp_full` selects the variant.
"""
from __future__ import annotations

from collections.abc import Iterator

from posepile.datasets import mpi_inf_3dhp
from posepile.example import Pose3DExample

SKELETON = mpi_inf_3dhp.SKELETON
DESCRIPTION = 'MPI-INF-3DHP training set: 28 joints (annot.mat), all 14 cameras, avi videos'


def convert(root, **options) -> Iterator[Pose3DExample]:
    """`mpi_inf_3dhp.convert(root, full=True, **options)`."""
    return mpi_inf_3dhp.convert(root, full=True, **options)
