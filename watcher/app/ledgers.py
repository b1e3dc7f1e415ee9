"""Opening the ledger a config names: the SQLite file in state_dir, or the PostgreSQL DSN.

Imports the config and the ledger. The DSN never reaches a message: the ledger names it with
its password masked.
"""

from __future__ import annotations

import socket

from watcher.config import Config
from watcher.ledger import Ledger, ledger_path


def open_ledger(config: Config, *, readonly: bool = False, create: bool = False) -> Ledger:
    """The ledger of `config`: read-only (`status`), or writable, migrated to the current
    schema (`create`: also make state_dir, as the daemon does).

    Raises:
        LedgerError: it cannot be opened (see `Ledger.on_postgres`, `Ledger.open_readonly`).
    """
    state = config.state
    if state.backend == "postgresql":
        assert state.dsn is not None  # the parser requires it
        return Ledger.on_postgres(state.dsn, readonly=readonly)
    if readonly:
        return Ledger.open_readonly(ledger_path(config.state_dir))
    if create:
        return Ledger.in_state_dir(config.state_dir)
    return Ledger(ledger_path(config.state_dir))


def no_ledger_yet(config: Config) -> bool:
    """True when the config's ledger is an SQLite file that does not exist yet (the daemon
    never ran with this state_dir): a reader has nothing to open."""
    return config.state.backend == "sqlite" and not ledger_path(config.state_dir).exists()


def host_id(config: Config) -> str:
    """This host's name on a shared ledger: state.host_id, else the host name."""
    return config.state.host_id or socket.gethostname()


def open_daemon_ledger(config: Config) -> Ledger:
    """The daemon's ledger: on PostgreSQL it works as `host_id(config)`, claiming the drops it
    submits, tracks and finishes (`Ledger.act_as`); on SQLite it is the only host.

    Raises:
        LedgerError: it cannot be opened.
    """
    ledger = open_ledger(config, create=True)
    if config.state.backend == "postgresql":
        ledger.act_as(host_id(config), lease_s=config.state.lease_seconds)
    return ledger
