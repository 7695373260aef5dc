"""The exception types of clstm, in one leaf module that imports nothing of clstm.

Every error a user can cause is one of these, with a one-line message that names what is wrong
and how to fix it. Where the fix is spelled differently in Python and on the command line
(``overwrite=True`` vs ``--overwrite``), the message is the Python one and ``cli_message`` the
command-line one; the ``clstm`` command prints ``cli_message``.

Exit statuses of the ``clstm`` command: :class:`ConfigError` and its subclasses are usage errors
(exit 2, nothing written); :class:`RunFailed`, :class:`OutputError` and interruptions are faults
(exit 1, the run directory records what happened).
"""

from __future__ import annotations


class ClstmError(Exception):
    """Base of clstm's errors; ``cli_message`` is the message in command-line terms."""

    def __init__(self, message: str, *, cli: str | None = None):
        super().__init__(message)
        self.cli_message = cli if cli is not None else message


class ConfigError(ClstmError, ValueError):
    """A config file, key, value or argument is wrong. The message names it and what is allowed."""


class DataError(ClstmError, ValueError):
    """A dataset is malformed; the message names the dataset and the problem."""


class RunExistsError(ConfigError):
    """The run directory already holds a run; pass ``overwrite=True`` (``--overwrite``)."""


class RunLockedError(ConfigError):
    """Another process is writing the run directory (it holds the run's lock)."""


class RunFailed(ClstmError, RuntimeError):
    """The run raised an unexpected error; its directory holds ``traceback.txt``."""


class OutputError(ClstmError, OSError):
    """A result could not be written or read (disk full, read-only, corrupt file)."""


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt raised by a signal handler; ``cause`` names the signal (``SIGTERM``).

    Runs treat it like Ctrl-C: what was measured is recorded with status ``interrupted`` and the
    run can be continued with ``--resume``. ``started`` is False for an interruption before the
    run touched its directory (while its benchmark was being built or downloaded).
    """

    def __init__(self, cause: str = "Ctrl-C", started: bool = True):
        super().__init__(cause)
        self.cause = cause
        self.started = started


def interruption_cause(exc: BaseException) -> str:
    """What interrupted: an :class:`Interrupted`'s cause, else ``Ctrl-C`` (a plain
    KeyboardInterrupt)."""
    return getattr(exc, "cause", None) or "Ctrl-C"
