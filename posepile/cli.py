"""What every command-line tool of the project shares, in one place:

- `--debug`: show the traceback of an error and TensorFlow's own start-up logging;
- a user error (bad or missing input: ValueError, KeyError, OSError, TensorFlow's argument and
  data errors, or SystemExit with a message) ends in ONE line on stderr, `<prog>: error: <what>`,
  and exit status 2, like argparse's usage errors; anything else (a bug) keeps its traceback;
- `--help` (and argparse's own errors) answer before TensorFlow is imported, because the command
  modules import it only inside their `run` function;
- TensorFlow's C++ start-up lines are silenced (import_tensorflow, below).

A command module:

    def build_parser() -> argparse.ArgumentParser: ...
    def run(args) -> int | None: ...                 # heavy imports inside
    def main(argv=None) -> int:
        return cli.run(build_parser, run, argv, uses_tensorflow=True)
    if __name__ == '__main__':
        sys.exit(main())

TensorFlow 2.21's start-up logging, measured on a CPU machine (bench/cli_startup.py,
bench/README.md): `import tensorflow` prints "WARNING: All log messages before
absl::InitializeLog() …", "oneDNN custom operations are on …" and "Could not find cuda drivers
…" twice (two shared libraries each hold a copy of absl logging, and both log before any log
level is applied, so TF_CPP_MIN_LOG_LEVEL does not reach them), then "This TensorFlow binary is
optimized …" (2 lines, INFO level); the first device listing prints "E0000 … failed call to
cuInit: … UNKNOWN ERROR (303)". TF_CPP_MIN_LOG_LEVEL=2 removes the INFO/WARNING lines that come
after start-up (cpu_feature_guard, per-call "loop_optimizer … Skipping loop optimization"), 3
also the cuInit error, but neither the six lines printed while the libraries load. So
`import_tensorflow` sets TF_CPP_MIN_LOG_LEVEL=2 (unless the user set it), imports TensorFlow and
lists the devices with file descriptor 2 sent to a temporary file, and then writes back every
captured line except the known start-up lines; the cuInit failure counts as one only when TF
also said it found no CUDA driver (on a GPU machine it is news, and it is kept). TensorFlow's
Python logger is set to WARNING (its INFO lines, e.g. "Sharding callback duration", would
otherwise follow a command's logging.basicConfig(level=INFO)).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

# TensorFlow's exception classes that mean "your input is wrong" (an unknown skeleton name, a
# damaged record, a file that is not there), matched by name so that this module needs no
# TensorFlow import.
TF_USER_ERRORS = frozenset({'InvalidArgumentError', 'NotFoundError', 'DataLossError',
                            'FailedPreconditionError', 'OutOfRangeError'})

_ABSL_PREFIX = r'^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] '
START_UP_LINES = tuple(re.compile(p) for p in (
    r'^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$',
    _ABSL_PREFIX + r'oneDNN custom operations are on\.',
    _ABSL_PREFIX + r'Could not find cuda drivers on your machine, GPU will not be used\.',
    _ABSL_PREFIX + r'This TensorFlow binary is optimized to use available CPU instructions',
    r'^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler',
))
NO_CUDA_DRIVER = START_UP_LINES[2]
CUINIT_FAILED = re.compile(_ABSL_PREFIX + r'failed call to cuInit: ')


class UserError(Exception):
    """An error in what the user gave (a command may raise it where no built-in type fits)."""


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is about the user's input (one line) rather than a bug (traceback)."""
    if isinstance(error, (UserError, ValueError, LookupError, OSError, pickle.UnpicklingError)):
        return True
    return (type(error).__module__.startswith('tensorflow')
            and type(error).__name__ in TF_USER_ERRORS)


_TF_BOILERPLATE = re.compile(r'^(Graph execution error:|Detected at node |<stack traces '
                             r'unavailable>|\s*\[\[\{\{node |\s*File "|Op:__inference)')


def one_line(error: BaseException) -> str:
    """The message of `error` on one line.

    KeyError's str() is the repr of its argument, so the argument is taken; an OSError from the
    operating system (open() of a missing file) becomes 'path: reason'. TensorFlow's op
    errors wrap the useful sentence in 'Graph execution error … Detected at node …' lines; the
    sentence of a failed in-graph assertion ('assertion failed: [a] [b]') is what is kept.
    """
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        text = error.args[0]
    elif isinstance(error, OSError) and error.filename is not None and error.strerror:
        # open()'s "[Errno 2] No such file or directory: 'x.json'": the file first, no errno.
        text = f'{os.fsdecode(error.filename)}: {error.strerror}'
    else:
        text = getattr(error, 'message', None) or str(error) or type(error).__name__
    text = str(text)
    assertion = re.search(r'assertion failed: (.*)', text)
    if assertion:
        # tf.debugging.Assert prints each of its data items in brackets: "[a] [b] [1 2 3]".
        items = assertion.group(1).strip()
        if items.startswith('[') and items.endswith(']'):
            items = ' '.join(part.strip() for part in items[1:-1].split('] ['))
        text = items
    else:
        lines = [line.strip() for line in text.splitlines()]
        kept = [line for line in lines if line and not _TF_BOILERPLATE.match(line)]
        text = ' '.join(kept) if kept else ' '.join(lines)
    return re.sub(r'\s+', ' ', text).strip()


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--debug', action='store_true',
                        help="on an error, show the traceback (and TensorFlow's start-up log)")


def run(build_parser: Callable[[], argparse.ArgumentParser], command: Callable[[Any], Any],
        argv: Sequence[str] | None = None, *,
        uses_tensorflow: bool | Callable[[Any], bool] = False) -> int:
    """Parses `argv` with the command's parser (plus --debug), then runs `command(args)`.

    uses_tensorflow: whether the command imports TensorFlow (or a function of the parsed
    arguments saying so): it is then imported quietly first (import_tensorflow).
    Returns the exit status: command's int result (None = 0), EXIT_USER_ERROR after printing
    a user error on one line, EXIT_INTERRUPTED on Ctrl-C. With --debug, or for errors that are
    not user errors, the exception propagates with its traceback (exit status 1).
    """
    parser = build_parser()
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    prog = parser.prog
    try:
        if uses_tensorflow(args) if callable(uses_tensorflow) else uses_tensorflow:
            import_tensorflow(verbose=args.debug)
        result = command(args)
    except SystemExit as error:
        if isinstance(error.code, str) and not args.debug:
            message = error.code.removeprefix('error: ')
            print(f'{prog}: error: {one_line(ValueError(message))}', file=sys.stderr)
            return EXIT_USER_ERROR
        raise
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f'{prog}: interrupted', file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - sorted into user errors and bugs just below
        if args.debug or not is_user_error(error):
            raise
        print(f'{prog}: error: {one_line(error)}', file=sys.stderr)
        return EXIT_USER_ERROR
    return 0 if result is None else int(result)


@contextlib.contextmanager
def _file_descriptor_2_captured():
    """Sends fd 2 (C/C++ stderr, and Python's sys.stderr) to a temporary file while inside;
    yields a function returning what was written. A file, not a pipe: a pipe could fill up and
    block the writer."""
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield capture
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def filter_start_up_lines(text: str) -> list[str]:
    """The lines of `text` that are not TensorFlow's known start-up logging (module doc)."""
    lines = text.splitlines()
    no_driver = any(NO_CUDA_DRIVER.match(line) for line in lines)
    return [line for line in lines
            if not any(p.match(line) for p in START_UP_LINES)
            and not (no_driver and CUINIT_FAILED.match(line))]


def import_tensorflow(verbose: bool = False):
    """Imports TensorFlow without its start-up lines (module doc); returns the module.

    Once TensorFlow is imported (by this or anything else) this only returns it. verbose=True
    imports it untouched (`--debug`).
    """
    if 'tensorflow' in sys.modules:
        return sys.modules['tensorflow']
    if verbose:
        import tensorflow
        return tensorflow
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    captured = ''
    try:
        with _file_descriptor_2_captured() as capture:
            try:
                import tensorflow
                # The CUDA platform logs when first asked for devices: ask now, while captured.
                tensorflow.config.list_physical_devices()
            finally:
                sys.stderr.flush()
                capture.seek(0)
                captured = capture.read().decode('utf-8', errors='replace')
    finally:
        # Also when the import failed: what else was printed may say why.
        kept = filter_start_up_lines(captured)
        if kept:
            print('\n'.join(kept), file=sys.stderr)
    logging.getLogger('tensorflow').setLevel(logging.WARNING)
    return tensorflow


class DeferredModule:
    """A stand-in for a module, imported at its first attribute access (TensorFlow through
    import_tensorflow, so quietly). For a command whose module is also its library and so uses
    TensorFlow at the top level (acae.train, metrabs.pseudo_gt): `tf = cli.DeferredModule(
    'tensorflow')` there lets `--help` answer without importing it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute):
        import importlib
        if self._name == 'tensorflow' or self._name.startswith(('keras', 'tensorflow.')):
            import_tensorflow()
        module = importlib.import_module(self._name)
        value = getattr(module, attribute)
        setattr(self, attribute, value)  # later lookups skip __getattr__
        return value
