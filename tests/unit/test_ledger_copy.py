"""`Ledger.copy_from` (behind `ledger migrate`): a SQLite ledger's every row, in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.ledger_helpers import NOW, make_in_state
from watcher.errors import LedgerError
from watcher.ledger import Ledger
from watcher.model import DropFile, DropState

FILES = (DropFile(rel="a.pdf", size=10, mtime_ns=1), DropFile(rel="b.pdf", size=20, mtime_ns=2))


def test_every_row_and_file_is_copied_as_it_was(tmp_path: Path, pg_dsn: str) -> None:
    """States, runs, attempts, archived rows and uploaded files arrive unchanged, ids kept."""
    with Ledger(tmp_path / "ledger.sqlite3") as src:
        for state in DropState:
            make_in_state(src, state, drop=f"in-{state.value}")
        done = make_in_state(src, DropState.COMPLETE, drop="again")
        src.mark_post_action_done(done.id, now=NOW + 5)
        src.resubmit(done.id, "fp2", now=NOW + 6)  # an archived row and a live one, one drop
        up = src.record_ready(
            rule="r",
            drop="up",
            fingerprint="fp",
            input_dir=None,
            deployment_id="dep",
            now=NOW,
            state=DropState.UPLOADING,
            files=FILES,
        )
        src.stages.set_batch(up.id, batch_id=7, now=NOW + 1)
        src.stages.file_uploaded(up.id, "a.pdf", now=NOW + 2)
        with Ledger.on_postgres(pg_dsn) as dst:
            copied = dst.copy_from(src)
            assert copied.drops == len(src.all_drops()) == len(DropState) + 3
            assert copied.files == 2
            assert dst.all_drops() == src.all_drops()
            assert dst.counts() == src.counts()
            assert dst.stages.files_of(up.id) == src.stages.files_of(up.id)
            assert [f.uploaded for f in dst.stages.files_of(up.id)] == [True, False]
            assert dst.find_active("r", "again") == src.find_active("r", "again")


def test_a_target_with_drops_is_refused_and_left_alone(tmp_path: Path, pg_dsn: str) -> None:
    with Ledger(tmp_path / "ledger.sqlite3") as src, Ledger.on_postgres(pg_dsn) as dst:
        make_in_state(src, DropState.SUBMITTED, drop="a")
        theirs = make_in_state(dst, DropState.READY, drop="b")
        with pytest.raises(LedgerError, match="already holds 1 drops"):
            dst.copy_from(src)
        assert dst.all_drops() == [theirs]
