"""Error kinds that the CLI turns into one line on stderr and exit code 2.

Every user-facing failure (bad file, bad key, bad value) raises a subclass of `GeoDinoError` whose message
names the file, key or value and says what to do. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GeoDinoError(Exception):
    """Base class of user-facing errors: the message is the whole story, shown without a traceback."""

    exit_code = 2


class InputError(GeoDinoError):
    """Unreadable or unsuitable input data: raster, image, labels, polygons, output location."""


class ConfigError(GeoDinoError):
    """A config file, key or value that cannot be used."""


class CheckpointError(GeoDinoError):
    """A checkpoint that cannot be read or does not fit the model."""


class TrainingError(GeoDinoError):
    """Training cannot continue (for example a NaN loss); the last good checkpoint is kept."""
