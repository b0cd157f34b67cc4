"""python -m rehearsal [--out=DIR] [--size=default|ci] [--stages=write,build,...] [--fresh]

Runs the stages of rehearsal/stages.py in order (all by default; --stages picks some, e.g. to
continue after fixing a failed one: the outputs of earlier stages under --out are reused), prints
the summary (rehearsal/summary.py) and exits 0; 1 if a command failed, 2 on a wiring error
(rehearsal/checks.py), each with a message naming what failed.
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import sys

from rehearsal import stages, summary
from rehearsal.checks import WiringError
from rehearsal.sizes import SIZES


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m rehearsal', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='out/rehearsal', type=pathlib.Path)
    parser.add_argument('--size', default='default', choices=sorted(SIZES))
    parser.add_argument('--stages', default=','.join(stages.STAGES),
                        help=f'comma-separated, from: {",".join(stages.STAGES)}')
    parser.add_argument('--fresh', action='store_true', help='delete --out first')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    names = [s.strip() for s in args.stages.split(',') if s.strip()]
    unknown = sorted(set(names) - set(stages.STAGES))
    if unknown:
        print(f'rehearsal: unknown stages {unknown}; known: {list(stages.STAGES)}',
              file=sys.stderr)
        return 2
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    run = stages.Run(args.out.resolve(), SIZES[args.size])
    try:
        run.load_state()
    except ValueError as error:
        print(f'rehearsal: {error}', file=sys.stderr)
        return 2
    for name in [s for s in stages.STAGES if s in names]:
        print(f'== rehearsal: {name}', flush=True)
        try:
            seconds = stages.run_stage(run, name)
        except WiringError as error:
            print(f'rehearsal: WIRING ERROR before or in stage {name}: {error}', file=sys.stderr)
            return 2
        except stages.StageFailed as error:
            print(f'rehearsal: {error}', file=sys.stderr)
            return 1
        print(f'   {name}: {seconds:.0f} s', flush=True)
    print(summary.write(run.out))
    print(f'wrote {run.out / "summary.md"} and summary.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
