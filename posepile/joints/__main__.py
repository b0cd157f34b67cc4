"""CLI: `python -m posepile.joints --summary` prints every skeleton format and the union sizes."""
from __future__ import annotations

import argparse
import sys

import posepile.joints as joints
from posepile import cli


def summary_lines() -> list[str]:
    """The --summary table: one row per format (name, tag, #joints, #edges), then union sizes."""
    rows = [('skeleton', 'tag', 'joints', 'edges', 'kind')]
    for name in joints.skeleton_names():
        fmt = joints.get_format(name)
        skeleton = joints.get_skeleton(name)
        kind = ('synthetic' if joints.is_synthetic(name) else '2d' if fmt.is_2d else '3d')
        if fmt.parent:
            kind += f', subset of {fmt.parent}'
        rows.append((name, fmt.tag or '(plain)', str(len(skeleton)), str(len(skeleton.edges)),
                     kind))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f'{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  '
             f'{r[3]:>{widths[3]}}  {r[4]}' for r in rows]
    lines.append('')
    for which in joints.UNIONS:
        union = joints.get_union(which)
        lines.append(f'union {which}: {len(union)} joints, {len(union.edges)} edges')
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m posepile.joints', description=__doc__)
    parser.add_argument('--summary', action='store_true',
                        help='print every skeleton format and the union sizes')
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.summary:
        build_parser().print_help()
        return 2
    print('\n'.join(summary_lines()))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser, run, argv)


if __name__ == '__main__':
    sys.exit(main())
