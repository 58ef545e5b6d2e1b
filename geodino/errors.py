"""Error kinds that the CLI turns into one line on stderr and exit code 2.

Every user-facing failure (bad file, bad key, bad value) raises a subclass of `GeoDinoError` whose message
names the file, key or value and says what to do. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class GeoDinoError(Exception):
    """Base class of user-facing errors: the message is the whole story, shown without a traceback."""

    exit_code = 2


class InputError(GeoDinoError):
    """Unreadable or unsuitable input data: raster, image, labels, polygons, output location."""


class MissingBandError(InputError):
    """A band name a raster or datacube lacks. Besides the line it keeps what the line is built from: `source`
    ("raster PATH" / "datacube PATH"), `band` and `names` (the bands it has), so a caller that names its own setting
    (`bands=` of geodino.pretrain) words its own fix without parsing the message. Pickles as its message alone
    (the fields come back empty), like any InputError sent from a worker process."""

    def __init__(self, message: str, *, source: str = "", band: str = "", names: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.source, self.band, self.names = source, band, tuple(names)

    def with_fix(self, fix: str) -> InputError:
        """The same line with `fix` in place of the setting it names (what to do, after the bands it has)."""
        return InputError(f"{self.source} has no band {self.band!r} (its bands: {', '.join(self.names)}); {fix}")


class DuplicateBandError(InputError):
    """Two requested band names that pick one band of a file (`[red, red]`, `[b1, red]` of an RGB file). Keeps
    `first`, `second`, `band` (1-based) and `name` (the file's name of it), so a caller that names its own setting
    (`embed --bands`, `bands=[...]`) words the line without parsing it."""

    def __init__(self, message: str, *, first: str = "", second: str = "", band: int = 0, name: str = "") -> None:
        super().__init__(message)
        self.first, self.second, self.band, self.name = first, second, band, name


class ConfigError(GeoDinoError):
    """A config file, key or value that cannot be used."""


class CheckpointError(GeoDinoError):
    """A checkpoint that cannot be read or does not fit the model."""


class TrainingError(GeoDinoError):
    """Training cannot continue (for example a NaN loss); the last good checkpoint is kept."""


def did_you_mean(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The up to `n` valid names closest to a misspelt `word` (difflib ratio >= `cutoff`), best first: the one
    place that answers "did you mean ...?" for keys, architectures, sensors, bands, datasets and options."""
    import difflib

    # choices may repeat (a sensor's bands then its aliases): each name is offered once
    return difflib.get_close_matches(str(word), list(dict.fromkeys(choices)), n=n, cutoff=cutoff)


def plural(n: int, noun: str, many: str | None = None) -> str:
    """`n` and the noun in its number for messages: "1 band", "2 bands" (`many` for irregular plurals such as
    "classes"); the one place that keeps "1 bands" out of what users read."""
    return f"{n} {noun if n == 1 else (many or noun + 's')}"


def one_line(exc: BaseException, limit: int = 0) -> str:
    """An exception's whole text on one line for a message that quotes it: line breaks folded (`; `, or a space
    after `:;,.`), blank lines and indents dropped, cut at `limit` characters (0: whole) with "..."; its type's
    name when it has no text. Why: its first line alone dropped what a library put on the next ones (the file a
    GDAL error names, the reason under an empty first line), and the CLI's error line must stay one line."""
    parts = [part.strip() for part in str(exc).splitlines() if part.strip()]
    text = parts[0] if parts else type(exc).__name__
    for part in parts[1:]:
        text += (" " if text.endswith((":", ";", ",", ".")) else "; ") + part
    if limit and len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text
