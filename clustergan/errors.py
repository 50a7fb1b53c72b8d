"""User-facing errors.

Every mistake a user can make (a bad config key, an unreadable image, a missing weight file) raises
:class:`ClusterganError` with a message that names the file / key / value and says what to do. The CLI
prints the message without a traceback and exits with status 2. Programming errors stay ordinary
exceptions so that their tracebacks are kept.
"""


class ClusterganError(Exception):
    """An error caused by user input or environment, with a message meant for the user."""


class ConfigError(ClusterganError):
    """An invalid configuration: unknown key, wrong type or out-of-range value."""


class DataError(ClusterganError):
    """An invalid dataset: unreadable image, wrong layout, empty split."""


class WeightsError(ClusterganError):
    """Pretrained weights that cannot be found or loaded."""


class TrainingDiverged(ClusterganError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""
