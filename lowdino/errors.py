"""User-facing errors.

A `LowDinoError` carries one line that names the cause and the fix. The CLI prints it without a
traceback and exits with status 2; the server turns it into a 4xx response. Anything else that
escapes is a bug and keeps its traceback.
"""


class LowDinoError(Exception):
    """An error caused by the user's input or environment, with a one-line explanation."""


class ConfigError(LowDinoError):
    """An invalid configuration value, file or combination of values."""


class DataError(LowDinoError):
    """A dataset that is missing, unreadable or unsuitable for the run."""


class CheckpointError(LowDinoError):
    """A checkpoint that is missing, corrupt or from a different backbone / config."""


class DeviceError(LowDinoError):
    """A device that is unavailable, or a run that does not fit in its memory."""


class WeightsNotFoundError(LowDinoError):
    """Pretrained weights were requested but are neither cached locally nor reachable."""
