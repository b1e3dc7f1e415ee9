"""Upload bodies streamed into sha256 (never held), and the multipart upload sessions.

A session keeps one running sha256 over its parts, so parts must arrive in order, one at a
time; the latest part may be sent again (a retry) and replaces itself. Safe from any thread.
Imports no watcher module outside sim/.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from watcher.sim.validate import BadRequest

if TYPE_CHECKING:
    from watcher.sim.http import Response


class Upload:
    """A request body streamed into a sha256 and a byte count (an http.BodySink).

    `finish` runs once the whole body has arrived and gives the answer to the request.
    """

    __slots__ = ("_finish", "hasher", "size")

    def __init__(self, hasher: Any, finish: Callable[[Upload], Response]) -> None:
        self.hasher = hasher
        self.size = 0
        self._finish = finish

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self.hasher.update(data)

    def finish(self) -> Response:
        return self._finish(self)


@dataclass(slots=True, kw_only=True)
class Session:
    id: str
    batch_id: int
    filename: str
    file_size: int
    part_size: int
    part_ids: list[str] = field(default_factory=list)  # accepted parts, in order
    part_sizes: list[int] = field(default_factory=list)
    hasher: Any = field(default_factory=hashlib.sha256)  # over every accepted part
    before_last: Any = None  # the hasher before the latest part, to take a retry of it
    received: int = 0  # bytes in the accepted parts
    version: int = 0  # bumped by every accepted part

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.id,
            "batch_id": self.batch_id,
            "filename": self.filename,
            "file_size": self.file_size,
            "part_size": self.part_size,
            "parts": len(self.part_ids),
            "received": self.received,
        }


@dataclass(frozen=True, slots=True)
class PartTicket:
    """What an in-flight part was checked against; `accept` refuses it if the session moved on."""

    session_id: str
    part_num: int
    version: int
    length: int


@dataclass(frozen=True, slots=True)
class Committed:
    batch_id: int
    filename: str
    size: int
    sha256: str


class SessionStore:
    """Open multipart upload sessions by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, batch_id: int, filename: str, file_size: int, part_size: int) -> Session:
        session = Session(
            id=uuid.uuid4().hex + uuid.uuid4().hex,
            batch_id=batch_id,
            filename=filename,
            file_size=file_size,
            part_size=part_size,
        )
        with self._lock:
            self._sessions[session.id] = session
        return session

    def open_part(self, session_id: str, part_num: int, length: int) -> tuple[PartTicket, Any]:
        """Check a part's number and length before its body is read: the ticket and the hasher
        to stream it into. Raises BadRequest (404 no session, 400 wrong number or length)."""
        with self._lock:
            session = self._get(session_id)
            done = len(session.part_ids)
            if part_num == done + 1:
                base, before = session.hasher, session.received
            elif part_num == done and done > 0:  # the latest part again: it replaces itself
                base, before = session.before_last, session.received - session.part_sizes[-1]
            else:
                expected = f"{done + 1}" if done == 0 else f"{done} or {done + 1}"
                raise BadRequest(
                    400,
                    f"part {part_num} is out of order: parts are consecutive, expected {expected}",
                )
            _check_part_length(session, before, length)
            return PartTicket(session_id, part_num, session.version, length), base.copy()

    def accept(self, ticket: PartTicket, upload: Upload) -> str:
        """Adopt a fully received part; its part_id. Raises BadRequest (404, or 409 when the
        session changed while the part was uploading)."""
        with self._lock:
            session = self._get(ticket.session_id)
            if session.version != ticket.version:
                raise BadRequest(409, f"part {ticket.part_num} raced another part; send it again")
            if ticket.part_num == len(session.part_ids):  # a retry of the latest part
                session.part_ids.pop()
                session.received -= session.part_sizes.pop()
            else:
                session.before_last = session.hasher
            part_id = uuid.uuid4().hex
            session.part_ids.append(part_id)
            session.part_sizes.append(upload.size)
            session.received += upload.size
            session.hasher = upload.hasher
            session.version += 1
            return part_id

    def commit(self, session_id: str, parts: list[tuple[int, str]]) -> Committed:
        """Close the session, checking `parts` names every accepted part in order and that they
        make up the whole file. Raises BadRequest (404 no session, 400 parts don't match)."""
        with self._lock:
            session = self._get(session_id)
            expected = list(enumerate(session.part_ids, start=1))
            if parts != expected:
                raise BadRequest(400, _parts_mismatch(parts, expected))
            if session.received != session.file_size:
                raise BadRequest(
                    400,
                    f"parts hold {session.received} bytes, file_size is {session.file_size}",
                )
            del self._sessions[session_id]
        return Committed(
            session.batch_id, session.filename, session.received, session.hasher.hexdigest()
        )

    def abort(self, session_id: str) -> None:
        """Discard the session and its parts. Raises BadRequest(404) when there is none."""
        with self._lock:
            self._get(session_id)
            del self._sessions[session_id]

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.to_json() for s in self._sessions.values()]

    def _get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise BadRequest(404, "multipart upload session not found")
        return session


def _check_part_length(session: Session, before: int, length: int) -> None:
    """Every part is exactly part_size except the last, and no part goes past file_size."""
    end = before + length
    if length > session.part_size:
        raise BadRequest(400, f"part of {length} bytes is over part_size {session.part_size}")
    if end > session.file_size:
        raise BadRequest(400, f"part would end at byte {end}, past file_size {session.file_size}")
    if length < session.part_size and end != session.file_size:
        raise BadRequest(
            400,
            f"part of {length} bytes is short of part_size {session.part_size}"
            " and is not the last part",
        )


def _parts_mismatch(parts: list[tuple[int, str]], expected: list[tuple[int, str]]) -> str:
    if len(parts) != len(expected):
        return f"commit lists {len(parts)} parts, the session holds {len(expected)}"
    for (num, pid), (want_num, want_id) in zip(parts, expected, strict=True):
        if num != want_num:
            return f"parts must be listed in order: expected part_num {want_num}, got {num}"
        if pid != want_id:
            return f"part {num}: part_id does not match the uploaded part"
    return "parts do not match"  # pragma: no cover - unreachable when the lists differ
