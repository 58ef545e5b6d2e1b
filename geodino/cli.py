"""The `geodino` command. Each sub-command is a thin call of a public function.

Sub-commands are registered by small `commands.py` modules next to the code they call (so the CLI of each
part lives with that part); this file only assembles them and turns `GeoDinoError` into one line on stderr
with exit code 2 (`--debug` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from geodino.cli_format import HelpFormatter

# the warning and log lines live in cli_lines; these names stay importable from here (tests, older imports)
from geodino.cli_lines import _LogLines, _OnceLines, _one_line_warning, log_warnings_as_lines  # noqa: F401
from geodino.errors import GeoDinoError
from geodino.storage_errors import STORAGE_ERRNOS, STORAGE_WORDS, storage_error  # noqa: F401  re-exported

# Command name -> module exposing `register(subparsers) -> None` (which may add several commands).
COMMANDS = {
    "pretrain": "geodino.train.commands",
    "distill": "geodino.train.commands",
    "export": "geodino.train.commands",
    "probe": "geodino.eval.commands",
    "embed": "geodino.embed.commands",  # embed (+ pca, cluster, similar, zonal)
    "convert": "geodino.models.commands",
    "info": "geodino.models.commands",
    "data": "geodino.data.commands",  # data stats, sensors, index, stack, preview, curate
    "viz": "geodino.viz.commands",  # viz attention
    "demo": "geodino.demo",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))
DEBUG_ENV = "GEODINO_DEBUG"
"""Set to anything but empty or 0 to get tracebacks, as `--debug` does (for wrappers that cannot add the flag)."""


NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-inf(inity)?$", re.IGNORECASE)
"""A negative number as a value, not an option: -5, -0.5, -.5, -1e-4, -3.4E+38, -inf (what `float` reads)."""


class Parser(argparse.ArgumentParser):
    """argparse with geodino's error rule: one line (no usage block), exit code 2, the closest option named for an
    unknown one, and no abbreviated options (`--til` is not silently taken for `--tile`); its help layout is
    `HelpFormatter`'s. Sub-command parsers inherit the class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        # argparse's own rule knows -5 and -.5 only: `--scale -1e-4`, `--nodata -3.4e38` or `--nodata -inf` were
        # "expected one argument" (the value read as an unknown option); no geodino option looks like a number
        self._negative_number_matcher = NEGATIVE_NUMBER

    _epilog: str | None = None
    config_schema: type | None = None
    """The config schema whose keys the epilog lists (`add_config_arguments`): described when the epilog is first
    read (help, tests), not while parsing a command that runs: `describe` took ~0.3 s of each command's start-up
    and 4 of 5 schemas' worth (~0.5 s) of `geodino --help` and `--version`, which show none of them."""

    @property
    def epilog(self) -> str | None:
        if self.config_schema is not None:
            from geodino.config import describe
            from geodino.config_none import HEADER

            schema, self.config_schema = self.config_schema, None
            self._epilog = f"{HEADER}\n{describe(schema)}"  # indented lines: kept as written
        return self._epilog

    @epilog.setter
    def epilog(self, text: str | None) -> None:
        self.config_schema = None  # a text set by hand replaces the listing
        self._epilog = text

    def error(self, message: str) -> NoReturn:  # argparse's hook for every parse error
        # a value starting with a dash (a file `-scene.tif`) is read as an option, and the option before it is left
        # without its value: say how to pass it
        if (m := re.match(r"argument (--[\w-]+)(/-\w)?: expected one argument$", message)) is not None:
            message += (
                f" (a value that starts with '-' is read as an option: write {m[1]}=-VALUE, or ./-NAME for a file)"
            )
        self.exit(2, f"{self.prog}: error: {message}{closest_choice(message)}; see {self.prog} --help\n")

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:  # argparse's hook for each value read
        # an empty option value (`--out ''`, `--sensor ''`, `--bands ''`) was taken as "not given" or as the current
        # folder: probe, viz attention and data curate wrote into the folder the command ran in
        # an empty positional too (`convert '' OUT`: "checkpoint folder . has no config.json"); a sub-command's
        # name and the words passed on unread (REMAINDER) are argparse's own
        whole = action.nargs not in (argparse.PARSER, argparse.REMAINDER)
        if whole and not arg_string.strip() and arg_string is not action.default:  # not a default
            name = argparse._get_action_name(action)
            out = " or leave the option out" if action.option_strings else " or leave it out"
            out = out if action.option_strings or action.nargs in ("?", "*") else ""  # a required positional
            self.error(f"argument {name}: empty value {arg_string!r}; give a value{out}")
        return super()._get_value(action, arg_string)

    def unknown(self, extra: Sequence[str]) -> NoReturn:
        """Refuse the arguments `parse_known_args` left over, naming the closest known option of each flag."""
        import difflib

        known = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
        hints = []
        for arg in extra:
            flag = arg.split("=", 1)[0]
            names = {o[2:]: o for o in known}  # compared without the dashes every option shares
            close = difflib.get_close_matches(flag[2:], names, n=1, cutoff=0.6) if flag.startswith("--") else []
            if close:
                hints.append(f"{flag}: did you mean {names[close[0]]}?")
            elif flag in _OVERRIDE_FLAGS and any(a.dest == "overrides" for a in self._actions):
                # Hydra/detectron habits (`--set k=v`, `--opts k v`): this command takes its overrides bare
                hints.append(f"{flag}: overrides are written bare after the command, e.g. key=value (no {flag})")
        tail = f" ({'; '.join(hints)})" if hints else ""
        self.error(f"unrecognized arguments: {' '.join(extra)}{tail}")


# flags other tools take before their config overrides (yacs/detectron `--opts`, mmcv `--cfg-options`, `--set`)
_OVERRIDE_FLAGS = ("--set", "--override", "--overrides", "--opts", "--cfg-options", "--options")


def closest_choice(message: str) -> str:
    """` (did you mean embed?)` for argparse's "invalid choice: 'emebd' (choose from ...)" when one is close, else
    ''. Commands, sub-commands and every `choices=` flag (`--dtype`, `--to`, `--cloud-rule` ...) get it."""
    import re

    from geodino.errors import did_you_mean

    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if found is None:
        return ""
    close = did_you_mean(found.group(1), [c.strip().strip("'") for c in found.group(2).split(",")])
    return f" (did you mean {close[0]}?)" if close else ""


def whole_number(minimum: int = 1, maximum: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse `type` for counts and sizes: a whole number >= `minimum` (and <= `maximum` when given; `why` says
    why, after it), else argparse's one-line error naming the flag (`argument --samples: 0 is out of range: give a
    whole number >= 1`), before any work is done."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (>= {minimum})") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is out of range: give a whole number >= {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value} is out of range: give a whole number <= {maximum}{why}")
        return value

    return parse


class CommaList(argparse.Action):
    """`nargs="+"` names given either way: `--bands B04 B03 B02` or `--bands B04,B03,B02` (the comma form of
    `embed --bands 4,3,2` and of a spec's `?bands=red,green,blue`), one flat list; `B04,B03 B02` mixes both. Before,
    `--bands b1,b2` was one band named "b1,b2"."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None):
        names = [w.strip() for v in values for w in str(v).split(",") if w.strip()]
        if not names:
            parser.error(f"argument {option}: expected at least one name, e.g. {option} B04,B03,B02")
        setattr(namespace, self.dest, names)


class NumberList(argparse.Action):
    """`nargs="+"` whole numbers given either way, as `CommaList` takes names: `--heads 0 1` or `--heads 0,1`,
    `--window 0 0 256 256` or `--window 0,0,256,256` (as embed's `--window` and `--bbox` take them); before, a comma
    was "invalid int value: '0,1'". `count` (the `const`): exactly that many numbers."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None):
        words = [w for v in values for w in str(v).replace(",", " ").split()]
        try:
            numbers = [int(w) for w in words]
        except ValueError:
            bad = next(w for w in words if not w.lstrip("+-").isdigit())
            parser.error(f"argument {option}: {bad!r} is not a whole number")
        if not numbers or (self.const is not None and len(numbers) != self.const):
            want = f"{self.const} whole numbers" if self.const is not None else "at least one whole number"
            parser.error(f"argument {option}: expected {want} (space- or comma-separated), got {len(numbers)}")
        setattr(namespace, self.dest, numbers)


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The deepest sub-command parser `args` went through (`geodino embed pca` -> the pca parser)."""
    while parser._subparsers is not None:
        action = next(a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
        chosen = getattr(args, action.dest, None)
        if chosen not in action.choices:
            break
        parser = action.choices[chosen]
    return parser


def add_config_arguments(parser: argparse.ArgumentParser, schema: type | None = None) -> None:
    """Add `--config FILE.yaml` and free `key=value` overrides; list the schema's keys in `--help`."""
    from geodino.config import _CONFIG_FOLDERS, shipped_configs

    shipped = shipped_configs(schema) if schema is not None and schema.__name__ in _CONFIG_FOLDERS else []
    named = f", or a shipped one by name: {', '.join(shipped)}" if shipped else ""
    parser.add_argument(
        "--config", "-c", default=None, help=f"YAML config file{named} (keys below; _base_ to extend one)"
    )
    example = f", e.g. {override_example(schema)}" if schema is not None else ""
    parser.add_argument("overrides", nargs="*", default=[], help=f"dotted key=value overrides{example}")
    if schema is not None and isinstance(parser, Parser):
        parser.config_schema = schema  # described when the help is shown (`Parser.epilog`)
    elif schema is not None:
        from geodino.config import describe
        from geodino.config_none import HEADER

        parser.epilog = f"{HEADER}\n{describe(schema)}"  # indented lines: kept as written


def override_example(schema: type) -> str:
    """A valid `key=value` override of `schema` for `--help`: its `max_steps` key when it has one (pretraining,
    distillation), else its first number or string key (else a boolean one), with its default value."""
    import dataclasses

    def leaves(cls: type, prefix: str = ""):
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                yield from leaves(type(default), f"{prefix}{f.name}.")
            elif isinstance(default, (int, float, str)) and not isinstance(default, bool) and default != "":
                yield f"{prefix}{f.name}", default
            elif isinstance(default, bool):
                yield f"{prefix}{f.name}", str(default).lower()

    keys = list(leaves(schema))
    plain = [(k, v) for k, v in keys if v not in ("true", "false")] or keys
    key, value = next(((k, v) for k, v in keys if k.endswith("max_steps")), plain[0] if plain else ("key", "value"))
    return f"{key}={value}"


def add_output(parser: argparse.ArgumentParser, dest: str, help: str) -> None:
    """The output of `export` and `convert`: positional as documented (`geodino export CKPT OUT`), or `--out/-o OUT`
    as every other command names its output (`--out` was "unrecognized arguments"). `output_path` reads it."""
    parser.add_argument(dest, nargs="?", default=None, help=f"{help} (or --out)")
    parser.add_argument(
        "--out",
        "-o",
        dest=f"{dest}_flag",
        default=None,
        metavar=dest.upper(),
        help=f"{dest.upper()} as an option, as the other commands name their output",
    )


def output_path(args: argparse.Namespace, dest: str, usage: str) -> str:
    """The output `add_output` took: the positional or --out; both (different) or neither is one ConfigError line."""
    from geodino.errors import ConfigError

    positional, flag = getattr(args, dest), getattr(args, f"{dest}_flag")
    if positional is not None and flag is not None and positional != flag:
        raise ConfigError(f"{positional} and --out {flag} both name the output; give one of them")
    out = positional if positional is not None else flag
    if out is None:
        raise ConfigError(f"no output given: {usage}")
    setattr(args, dest, out)
    return out


def parse_point(values: Sequence[str], flag: str = "--point") -> tuple[float, float]:
    """A point given as `X Y` or `X,Y` (both spellings in every command that takes one), or a one-line error."""
    parts = [v for value in values for v in str(value).replace(",", " ").split()]
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    from geodino.errors import ConfigError

    raise ConfigError(
        f"{flag} {' '.join(map(str, values))!r} must be two numbers, X Y or X,Y (for a negative first number write "
        f"{flag}=X,Y)"
    )


def build_parser(only: str | None = None) -> Parser:
    """The argument parser with every sub-command, or only the module of command `only` (faster start-up)."""
    from geodino import __version__

    parser = Parser(
        prog="geodino",
        description="DINOv3 for Earth observation: pretrain, distill, probe, embed, convert.",
        epilog="Each command's options and examples: geodino COMMAND --help (geodino data SUBCOMMAND --help; embed's "
        "products pca, cluster, similar, zonal, classify and change are in geodino embed --help). New here? geodino "
        "demo runs the whole path on CPU in minutes (--size tiny: a toy run of a minute or two). Progress off a "
        "terminal (batch jobs, pipes) is whole lines, one per 30 s: GEODINO_PROGRESS=bar|lines|off, "
        "GEODINO_PROGRESS_INTERVAL.",
    )
    parser.add_argument("--version", action="version", version=f"geodino {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show full tracebacks instead of one-line errors (anywhere on the line; or set {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (COMMANDS[only],) if only in COMMANDS else COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a `kill`, a scheduler's stop) as an interrupt: it takes the way Ctrl-C does (the run's clean-up,
    `geodino: interrupted`), with exit code 143 (128 + 15) instead of 130."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within it, SIGTERM raises `Terminated` in the main thread instead of killing the process silently (exit 143
    with no clean-up, no line). Training takes SIGTERM over during fit (`train.stop.StopRequest`: save the step, exit
    130 with a resume hint) and gives this handler back after; the previous handler is restored at the end."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


OUTPUT_CLOSED_EXIT = 141
"""Exit code when the reader of the output went away (`geodino data sensors | head -1`): 128 + SIGPIPE, what a shell
reports for a Unix tool the closed pipe stopped (`set -o pipefail` scripts already tell it apart), and neither 1 (a
failure) nor 2 (bad input), since nothing failed but the output was cut short."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code. A reader that closed the output early
    (`| head`) ends the command quietly with `OUTPUT_CLOSED_EXIT`: it ended in a BrokenPipeError traceback."""
    try:
        with sigterm_as_interrupt():
            try:
                code = _main(argv)
            except SystemExit:  # argparse's --help, --version and usage errors: their text is still to be flushed
                _flush_stdout()
                raise
            _flush_stdout()  # here, not at exit, where a closed pipe is Python's "Exception ignored" and exit 120
            return code
    except BrokenPipeError:
        if not _stdout_closed():  # another pipe (a worker's): a failure, which keeps its traceback
            raise
        with contextlib.suppress(Exception):  # a bar of the stopped run: its line ends, if stderr is still read
            close_progress_bars()
        _stdout_to_devnull()
        return OUTPUT_CLOSED_EXIT


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone: poll reports an error on its write end (Linux, macOS);
    True where that cannot be asked (no poll, Windows), as Python's own advice treats every BrokenPipeError."""
    import select

    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        poll = select.poll()
    except (AttributeError, OSError, ValueError):
        return True
    poll.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poll.poll(0))


def _stdout_to_devnull() -> None:
    """Point stdout at os.devnull, so that Python's flush at exit does not raise (and print) the broken pipe again:
    the remedy Python's documentation of SIGPIPE gives."""
    import os

    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ is not None else 1)
        os.close(devnull)


def _main(argv: Sequence[str] | None) -> int:
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    # `--debug` anywhere on the line (`geodino embed ... --debug` too, which the sub-command's parser refused as an
    # unknown argument), or GEODINO_DEBUG=1 in the environment
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    argv = [a for a in argv if a != "--debug"]  # read here; the top-level flag stays for --help
    from geodino.io import forget_created_dirs

    forget_created_dirs()
    if not debug:  # one line per warning, without the line of library source code Python shows by default
        import warnings

        warnings.formatwarning = _OnceLines()  # a new one per command: tests run several in a process
        log_warnings_as_lines()
    try:
        first = next((a for a in argv if not a.startswith("-")), None)
        parser = build_parser(first)
        args, extra = parser.parse_known_args(argv)
        # argparse takes one run of positional overrides; `key=value` after an option (`-b X a=1 --out d b=2`) is
        # an override too, in the order given
        from geodino.config import is_override

        if extra and isinstance(getattr(args, "overrides", None), list) and all(is_override(a) for a in extra):
            args.overrides = [*args.overrides, *extra]
        elif extra:  # what is really unknown: one line naming the closest option of the command, exit code 2
            sub = command_parser(parser, args)
            (sub if isinstance(sub, Parser) else parser).unknown(extra)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if args.command is None else 2
        from geodino.progress import line_interval, progress_mode

        progress_mode()  # a bad GEODINO_PROGRESS / GEODINO_PROGRESS_INTERVAL fails here, before any set-up
        line_interval()
        result: Any = args.func(args)
        return int(result) if isinstance(result, int) else 0
    except GeoDinoError as exc:
        from geodino.io import remove_created_dirs

        remove_created_dirs()  # a failed run leaves no empty output folder behind
        if debug:
            raise
        close_progress_bars()
        print(f"geodino: error: {exc}", file=sys.stderr)
        from geodino.train.leave_group import leave_process_group  # a refused multi-process start: every rank leaves

        return leave_process_group(exc.exit_code, finished=False)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (`Terminated`); a note says how to finish (embed: --resume)
        notes = "".join(f"; {note}" for note in getattr(exc, "__notes__", ()))
        close_progress_bars()
        print(f"geodino: interrupted{notes}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:
        from geodino.train.peer_lost import peer_lost_line

        line = storage_error(exc) or peer_lost_line(exc)
        if line is None or debug:
            raise
        from geodino.io import remove_created_dirs

        remove_created_dirs()
        close_progress_bars()
        print(f"geodino: error: {line}", file=sys.stderr)
        from geodino.train.leave_group import leave_process_group  # a run with a group: leave it (no SIGABRT)

        return leave_process_group(1, finished=False)


def close_progress_bars() -> None:
    """Close the progress bars a stopped run left open, so that its last line starts a line of its own: a Ctrl-C
    during `data curate` printed `embedding tiles:   0%|   | 0/256 [...]geodino: interrupted`, the bar finished
    under it when the interpreter collected it."""
    from geodino.progress import open_bars

    for bar in open_bars():
        with contextlib.suppress(Exception):  # a bar of a closed stream: nothing left to tidy
            bar.close()


if __name__ == "__main__":
    sys.exit(main())
