"""The one table of exit codes: what each failure means for the process."""

from __future__ import annotations

from watcher.errors import ConfigError, LedgerError, StartupError, TokenError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2

# First match wins. EXIT_INVALID: nothing will change until the operator fixes the setup
# (systemd's RestartPreventExitStatus=2 keeps it from restarting in a loop); EXIT_FAILURE: worth
# a restart.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, EXIT_INVALID),
    (TokenError, EXIT_INVALID),
    (StartupError, EXIT_INVALID),
    (LedgerError, EXIT_FAILURE),
    (Exception, EXIT_FAILURE),
)


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for a failure, from `EXIT_CODES`."""
    return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))
