"""`BatchClient`: AI Hub batches (create, get, delete) and the files in them: one PUT per file,
or a multipart session for a large one. Reached as `HubClient.batches`, it sends through the
same connection pool and translator. Imports only the core and `watcher.hub`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from watcher.hub.errors import HubResponseError
from watcher.hub.models import (
    Batch,
    MultipartSession,
    build_batch_request,
    build_commit_request,
    build_multipart_request,
    check_filename,
)
from watcher.hub.sender import Sender
from watcher.hub.source import open_range
from watcher.hub.wire import as_int, json_body, json_type, path_segment

__all__ = ["BatchClient"]

_MULTIPART: str = "/v2/batches/multipart-upload"


class BatchClient:
    """Batch operations; thread-safe, like the `HubClient` that made it.

    Every method raises only `watcher.hub.errors.HubError` subclasses for hub or network
    failures; uploads also raise `UploadSourceError` when the local file is not as described.
    A POST whose answer is lost (create_batch, start_multipart, commit/abort_multipart) is a
    `HubAmbiguousError`; a PUT or DELETE whose answer is lost is a `HubTransportError`: sending
    it again is safe (a PUT overwrites, a second DELETE answers 404).
    """

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def __repr__(self) -> str:
        return "BatchClient()"

    def create_batch(self, *, name: str, workspace: str | None = None) -> Batch:
        """POST /v2/batches: a new, empty batch (its `name`/`workspace` as sent).

        Raises:
            HubAmbiguousError: no answer came back: the batch may exist (an orphan, if so).
            HubResponseError: 2xx without an integer id (the batch may exist).
            HubTransportError, HubStatusError subclasses.
        """
        path = "/v2/batches"
        resp = self._sender.request(
            "POST", path, body=build_batch_request(name=name, workspace=workspace)
        )
        data = json_body(resp, "POST", path)
        return Batch.from_json(data, method="POST", path=path, name=name, workspace=workspace)

    def get_batch(self, batch_id: int) -> Batch | None:
        """GET /v2/batches/{batch_id}: the batch, or None when it does not exist (404: the spec
        also answers 404 for a batch the token may not see).

        Raises:
            HubTransportError, HubResponseError, HubStatusError subclasses (not for 404).
        """
        path = f"/v2/batches/{_batch_segment(batch_id)}"
        resp = self._sender.request("GET", path, allow_404=True)
        if resp.status_code == 404:
            return None
        return Batch.from_json(json_body(resp, "GET", path), method="GET", path=path)

    def delete_batch(self, batch_id: int) -> str | None:
        """DELETE /v2/batches/{batch_id}: the id of the deletion job (status 202), or None when
        the batch is already gone (404), e.g. a repeat whose first answer was lost.

        Raises:
            HubResponseError: 2xx without a `job_id` string.
            HubTransportError, HubStatusError subclasses (not for 404).
        """
        path = f"/v2/batches/{_batch_segment(batch_id)}"
        resp = self._sender.request("DELETE", path, allow_404=True)
        if resp.status_code == 404:
            return None
        return _string_field(json_body(resp, "DELETE", path), "job_id", "DELETE", path)

    def upload_file(self, *, batch_id: int, filename: str, path: Path, size: int) -> None:
        """PUT /v2/batches/{batch_id}/files/{filename}: the file at `path`, streamed from disk
        in 1 MiB chunks with Content-Length `size`. Overwrites a file of that name.

        Raises:
            ValueError: `filename` is not one path segment, or a negative size.
            UploadSourceError: `path` is unreadable or its size is not `size` (checked on open
                and before the last chunk; a short body is never completed).
            HubTransportError: no answer (safe to repeat), or nothing sent.
            HubStatusError subclasses (404: no such batch, 413: too large: HubRejectedError).
        """
        check_filename(filename)
        req_path = f"/v2/batches/{_batch_segment(batch_id)}/files/{path_segment(filename)}"
        with open_range(path, offset=0, length=size, file_size=size) as chunks:
            self._sender.request("PUT", req_path, stream=chunks, stream_length=size)

    def start_multipart(self, *, batch_id: int, filename: str, file_size: int) -> MultipartSession:
        """POST /v2/batches/multipart-upload: a session to send `filename` in parts.

        Raises:
            ValueError: `filename` is not one path segment, or a negative/bool number.
            HubAmbiguousError: no answer: a session may exist (unused, it expires on its own).
            HubResponseError: 2xx without a session id and a positive part size.
            HubTransportError, HubStatusError subclasses (404: no such batch).
        """
        body = build_multipart_request(batch_id=batch_id, filename=filename, file_size=file_size)
        resp = self._sender.request("POST", _MULTIPART, body=body)
        data = json_body(resp, "POST", _MULTIPART)
        return MultipartSession.from_json(data, method="POST", path=_MULTIPART)

    def upload_part(
        self,
        *,
        session_id: str,
        part_num: int,
        path: Path,
        offset: int,
        length: int,
        file_size: int | None = None,
    ) -> str:
        """PUT .../sessions/{session_id}/parts/{part_num}: bytes [offset, offset + length) of
        `path`, streamed; the part id to commit it with. With `file_size`, the whole file must
        still be that long (a change anywhere fails the part); else just long enough.

        Raises:
            ValueError: part_num < 1, a negative offset/length, or a range past `file_size`.
            UploadSourceError: `path` is unreadable or not of the expected size.
            HubResponseError: 2xx without a `part_id` string, or for another part number.
            HubTransportError: no answer (safe to repeat: the part is sent again), or not sent.
            HubStatusError subclasses.
        """
        if isinstance(part_num, bool) or part_num < 1:
            raise ValueError(f"part_num must be 1 or more, got {part_num!r}")
        req_path = f"{_session_path(session_id)}/parts/{part_num}"
        with open_range(path, offset=offset, length=length, file_size=file_size) as chunks:
            resp = self._sender.request("PUT", req_path, stream=chunks, stream_length=length)
        data = json_body(resp, "PUT", req_path)
        part_id = _string_field(data, "part_id", "PUT", req_path)
        echoed = data.get("part_num") if isinstance(data, Mapping) else None
        if echoed is not None and as_int(echoed) != part_num:
            raise HubResponseError(
                f"answer is for part {echoed!r}, not {part_num}", method="PUT", path=req_path
            )
        return part_id

    def commit_multipart(self, *, session_id: str, parts: Sequence[tuple[int, str]]) -> None:
        """POST .../sessions/{session_id} with action `commit` and every (part_num, part_id),
        in order: the file appears in the batch.

        Raises:
            ValueError: no parts, or part numbers that are not 1, 2, 3, ...
            HubAmbiguousError: no answer: the file may be committed.
            HubTransportError, HubStatusError subclasses.
        """
        body = build_commit_request(parts)
        self._sender.request("POST", _session_path(session_id), body=body)

    def abort_multipart(self, *, session_id: str) -> None:
        """POST .../sessions/{session_id} with action `abort`: the parts are discarded.

        Raises:
            HubAmbiguousError: no answer (the session may be aborted; unused, it expires).
            HubTransportError, HubStatusError subclasses.
        """
        self._sender.request("POST", _session_path(session_id), body={"action": "abort"})


def _batch_segment(batch_id: int) -> str:
    if isinstance(batch_id, bool) or not isinstance(batch_id, int) or batch_id < 0:
        raise ValueError(f"batch_id must be a non-negative int, got {batch_id!r}")
    return str(batch_id)


def _session_path(session_id: str) -> str:
    return f"{_MULTIPART}/sessions/{path_segment(session_id)}"


def _string_field(data: object, name: str, method: str, path: str) -> str:
    """`data[name]`, a non-empty string. Raises HubResponseError otherwise."""
    value = data.get(name) if isinstance(data, Mapping) else None
    if not isinstance(value, str) or not value:
        got = json_type(value) if isinstance(data, Mapping) else f"a JSON {json_type(data)}"
        raise HubResponseError(
            f"response has no '{name}' string (got {got})", method=method, path=path
        )
    return value
