"""The /v2/batches endpoints: batches, their files, delete jobs and multipart upload sessions.

File and part bodies are streamed into sha256 as they arrive (see uploads.py); requests are
already authenticated. Imports no watcher module outside sim/.
"""

from __future__ import annotations

import hashlib
import random
from typing import Final

from watcher.sim import validate
from watcher.sim.batches import DEFAULT_LIST_PAGE, BatchStore, decode_token, encode_token
from watcher.sim.http import Request, Response, error
from watcher.sim.options import SimOptions
from watcher.sim.uploads import PartTicket, SessionStore, Upload
from watcher.sim.validate import BadRequest

MULTIPART: Final = "multipart-upload"


def _not_allowed(*methods: str) -> Response:
    return error(405, "method not allowed", ("Allow", ", ".join(methods)))


class BatchApi:
    """Answers requests under /v2/batches; runs on the simulator's loop thread."""

    def __init__(
        self, options: SimOptions, batches: BatchStore, sessions: SessionStore, prefix: str
    ) -> None:
        self.options = options
        self._batches = batches
        self._sessions = sessions
        self._prefix = prefix  # the API root path, for the Location header
        # Its own generator, so uploads don't shift the seeded run-submission faults.
        self._rng = random.Random(options.seed)

    # ----------------------------------------------------------------- streamed bodies
    def open_body(self, rest: list[str], request: Request) -> Upload | Response | None:
        """For a file or part PUT (`rest` follows /v2/batches): the sink its body streams into,
        or the refusal. None for every other request: its body is buffered."""
        if request.method != "PUT":
            return None
        length = int(request.headers.get("content-length", "0"))
        try:
            if len(rest) == 3 and rest[1] == "files" and rest[0] != MULTIPART:
                return self._open_file(rest, length)
            if len(rest) == 5 and rest[0] == MULTIPART and rest[1:4:2] == ["sessions", "parts"]:
                return self._open_part(rest[2], rest[4], length)
        except BadRequest as exc:
            return error(exc.status, exc.message)
        return None

    def _open_file(self, rest: list[str], length: int) -> Upload:
        batch_id = validate.int_segment(rest[0], "batch_id")
        filename = validate.filename_segment(rest[2])
        if not self._batches.exists(batch_id):
            raise BadRequest(404, f"batch {batch_id} does not exist")
        limit = self.options.max_put_bytes
        if length > limit:
            raise BadRequest(
                413, f"file of {length} bytes is over {limit} for one PUT; use multipart upload"
            )

        def finish(upload: Upload) -> Response:
            if self._upload_fails():
                return error(503, "service temporarily unavailable (simulated); nothing stored")
            if not self._batches.put_file(
                batch_id, filename, upload.size, upload.hasher.hexdigest()
            ):
                return error(404, f"batch {batch_id} was deleted during the upload")
            return Response(status=204)

        return Upload(hashlib.sha256(), finish)

    def _open_part(self, session_id: str, raw_num: str, length: int) -> Upload:
        part_num = validate.int_segment(raw_num, "part_num")
        if part_num < 1:
            raise BadRequest(400, "part_num must be >= 1")
        ticket, hasher = self._sessions.open_part(
            validate.decode_segment(session_id), part_num, length
        )

        def finish(upload: Upload) -> Response:
            return self._accept_part(ticket, upload)

        return Upload(hasher, finish)

    def _accept_part(self, ticket: PartTicket, upload: Upload) -> Response:
        if self._upload_fails():
            return error(503, "service temporarily unavailable (simulated); part not stored")
        part_id = self._sessions.accept(ticket, upload)
        return Response(status=201, body={"part_id": part_id, "part_num": ticket.part_num})

    def _upload_fails(self) -> bool:
        rate = self.options.upload_fail_rate
        return rate > 0 and self._rng.random() < rate

    # ----------------------------------------------------------------- routing
    def dispatch(self, rest: list[str], request: Request) -> Response:
        """The answer to a request under /v2/batches (`rest`: the segments after it)."""
        method = request.method
        if not rest:
            if method == "POST":
                name, workspace = validate.batch_request(request.body)
                return Response(status=200, body={"id": self._batches.create(name, workspace)})
            if method == "GET":
                return self._list_batches(request)
            return _not_allowed("GET", "POST")
        if rest[0] == MULTIPART:
            return self._multipart(rest[1:], request)
        if rest[0] == "jobs" and len(rest) == 2 and rest[1]:
            if method != "GET":
                return _not_allowed("GET")
            state = self._batches.job_state(validate.decode_segment(rest[1]))
            if state is None:
                return error(404, "job not found")
            return Response(status=200, body={"state": state, "message": "Done"})
        batch_id = validate.int_segment(rest[0], "batch_id")
        if len(rest) == 1:
            return self._batch(batch_id, method)
        if rest[1] == "files" and len(rest) == 2:
            if method != "GET":
                return _not_allowed("GET")
            return self._list_files(batch_id, request)
        if rest[1] == "files" and len(rest) == 3:
            return self._file(batch_id, validate.filename_segment(rest[2]), request)
        return error(404, "not found")

    def _batch(self, batch_id: int, method: str) -> Response:
        if method == "GET":
            info = self._batches.info(batch_id)
            if info is None:
                return error(404, f"batch {batch_id} does not exist")
            return Response(status=200, body=info)
        if method == "DELETE":
            job_id = self._batches.delete(batch_id)
            if job_id is None:
                return error(404, f"batch {batch_id} does not exist")
            return Response(status=202, body={"job_id": job_id})
        return _not_allowed("GET", "DELETE")

    def _file(self, batch_id: int, filename: str, request: Request) -> Response:
        if request.method == "PUT":
            if not isinstance(request.sink, Upload):  # pragma: no cover - open_body gave one
                return error(500, "upload body was not streamed")
            return request.sink.finish()
        if request.method == "DELETE":
            try:
                job_id = self._batches.delete_file(batch_id, filename)
            except KeyError:
                return error(404, f"batch {batch_id} does not exist")
            if job_id is None:
                return error(404, f"file {filename!r} is not in batch {batch_id}")
            return Response(status=202, body={"job_id": job_id})
        return _not_allowed("PUT", "DELETE")

    def _list_batches(self, request: Request) -> Response:
        limit, offset = validate.page_params(request.query, "limit")
        batches = self._batches.listing(
            workspace=validate.str_param(request.query, "workspace"),
            username=validate.str_param(request.query, "username"),
            limit=limit,
            offset=offset,
        )
        return Response(status=200, body={"batches": batches})

    def _list_files(self, batch_id: int, request: Request) -> Response:
        page_size = validate.page_params(request.query, "page_size")[0] or DEFAULT_LIST_PAGE
        token = validate.str_param(request.query, "start_token")
        offset = 0 if token is None else decode_token(token)
        if offset is None:
            return error(400, "start_token is not a token this listing gave")
        found = self._batches.files_page(batch_id, offset, page_size)
        if found is None:
            return error(404, f"batch {batch_id} does not exist")
        nodes, has_more = found
        body = {"nodes": nodes, "has_more": has_more}
        if has_more:
            body["next_page_token"] = encode_token(offset + page_size)
        return Response(status=200, body=body)

    # ----------------------------------------------------------------- multipart sessions
    def _multipart(self, rest: list[str], request: Request) -> Response:
        method = request.method
        if not rest:
            if method != "POST":
                return _not_allowed("POST")
            return self._create_session(request)
        if len(rest) == 2 and rest[0] == "sessions" and rest[1]:
            if method != "POST":
                return _not_allowed("POST")
            return self._close_session(validate.decode_segment(rest[1]), request.body)
        if len(rest) == 4 and rest[0] == "sessions" and rest[2] == "parts":
            if method != "PUT":
                return _not_allowed("PUT")
            if not isinstance(request.sink, Upload):  # pragma: no cover - open_body gave one
                return error(500, "part body was not streamed")
            return request.sink.finish()
        return error(404, "not found")

    def _create_session(self, request: Request) -> Response:
        batch_id, filename, file_size = validate.multipart_request(request.body)
        if not self._batches.exists(batch_id):
            return error(404, f"batch {batch_id} does not exist")
        session = self._sessions.create(batch_id, filename, file_size, self.options.part_size)
        host = request.headers.get("host", "127.0.0.1")
        location = f"http://{host}{self._prefix}/v2/batches/{MULTIPART}/sessions/{session.id}"
        return Response(
            status=201,
            body={"session_id": session.id, "part_size": session.part_size},
            headers=(("Location", location),),
        )

    def _close_session(self, session_id: str, body: bytes) -> Response:
        action, parts = validate.commit_request(body)
        if action == "abort":
            self._sessions.abort(session_id)
            return Response(status=201)
        done = self._sessions.commit(session_id, parts)
        if not self._batches.put_file(done.batch_id, done.filename, done.size, done.sha256):
            return error(404, f"batch {done.batch_id} was deleted during the upload")
        return Response(status=201)
