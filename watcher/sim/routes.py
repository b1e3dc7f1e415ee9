"""The API the simulator serves: auth, routing, and the endpoints (run deployment, get run,
list runs, run results, file metadata) with their injected faults; /v2/batches goes to
batch_api. Imports no watcher module outside sim/, least of all hub/.
"""

from __future__ import annotations

import email.utils
import hmac
import math
import random
import time
from typing import Any, Final

from watcher.sim import drive, validate
from watcher.sim.batch_api import BatchApi
from watcher.sim.batches import BatchStore
from watcher.sim.files import PathStore
from watcher.sim.http import BodySink, Request, Response, error
from watcher.sim.options import SimOptions
from watcher.sim.results import results_page
from watcher.sim.runs import RUNNING, InputFile, RunStore
from watcher.sim.uploads import SessionStore

API_PREFIX: Final = "/api"
_FILES: Final = "/v2/files/"


def _unauthorized() -> Response:
    return error(
        401, "missing or invalid bearer token", ("WWW-Authenticate", 'Bearer realm="aihub"')
    )


class RateLimiter:
    """Token bucket over run submissions, re-armed whenever the configured rate changes."""

    def __init__(self) -> None:
        self._rate: float | None = None
        self._tokens = 0.0
        self._at = 0.0

    def take(self, rate: float | None) -> int | None:
        """None when a submission is allowed now, else the Retry-After seconds."""
        if not rate or rate <= 0:
            self._rate = None
            return None
        now = time.monotonic()
        capacity = max(1.0, rate)
        if self._rate != rate:
            # (Re)armed: start full, so a new limit allows one second's worth at once.
            self._rate, self._tokens, self._at = rate, capacity, now
        self._tokens = min(capacity, self._tokens + (now - self._at) * rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / rate))


class Api:
    """Dispatches a request to its endpoint; runs on the simulator's loop thread."""

    def __init__(
        self,
        options: SimOptions,
        runs: RunStore,
        paths: PathStore,
        batches: BatchStore,
        sessions: SessionStore,
    ) -> None:
        self.options = options
        self._runs = runs
        self._paths = paths
        self._batches = batches
        self._batch_api = BatchApi(options, batches, sessions, API_PREFIX)
        self._rng = random.Random(options.seed)
        self._limiter = RateLimiter()

    def open_body(self, request: Request) -> BodySink | Response | None:
        """Before a body is read: the sink of a file or part upload, its refusal (a 401 too), or
        None to buffer the body."""
        if request.method != "PUT" or not request.path.startswith(API_PREFIX + "/v2/batches/"):
            return None
        rest = request.path[len(API_PREFIX) :].split("/")[1:]
        if not self._authorized(request.headers.get("authorization")):
            return _unauthorized()
        return self._batch_api.open_body(rest[2:], request)  # rest: ["v2", "batches", ...]

    def dispatch(self, request: Request) -> Response:
        """The endpoint's answer. Raises validate.BadRequest for an invalid request."""
        if not self._authorized(request.headers.get("authorization")):
            return _unauthorized()
        raw_path, method = request.path, request.method
        if raw_path != API_PREFIX and not raw_path.startswith(API_PREFIX + "/"):
            return error(404, "not found")
        rest = raw_path[len(API_PREFIX) :]

        if rest.startswith(_FILES) and len(rest) > len(_FILES):
            if method != "HEAD":
                return error(405, "method not allowed", ("Allow", "HEAD"))
            return self._file_metadata(rest[len(_FILES) :])

        segments = rest.split("/")[1:]
        if segments == ["v2", "apps", "runs"]:
            if method != "GET":
                return error(405, "method not allowed", ("Allow", "GET"))
            return Response(
                status=200, body={"runs": self._runs.list(validate.run_query(request.query))}
            )
        if len(segments) == 4 and segments[:3] == ["v2", "apps", "runs"] and segments[3]:
            if method != "GET":
                return error(405, "method not allowed", ("Allow", "GET"))
            return self._get_run(validate.decode_segment(segments[3]))
        if segments[:2] == ["v2", "batches"]:
            return self._batch_api.dispatch(segments[2:], request)
        if (
            len(segments) == 5
            and segments[:3] == ["v2", "apps", "runs"]
            and segments[3]
            and segments[4] == "results"
        ):
            if method != "GET":
                return error(405, "method not allowed", ("Allow", "GET"))
            return self._results(validate.decode_segment(segments[3]), request.query)
        if (
            len(segments) == 5
            and segments[:3] == ["v2", "apps", "deployments"]
            and segments[3]
            and segments[4] == "runs"
        ):
            if method != "POST":
                return error(405, "method not allowed", ("Allow", "POST"))
            return self._run_deployment(validate.decode_segment(segments[3]), request.body)
        return error(404, "not found")

    def _authorized(self, value: str | None) -> bool:
        if value is None:
            return False
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), self.options.token.encode())

    def _run_deployment(self, deployment_id: str, body: bytes) -> Response:
        """POST /v2/apps/deployments/{id}/runs, after the faults that refuse it."""
        opts = self.options
        if opts.forbid_runs:
            return error(403, "this token may not run deployments (simulated)")
        retry_after = self._limiter.take(opts.rate_limit)
        if retry_after is not None:
            return error(429, "rate limit exceeded", ("Retry-After", str(retry_after)))
        # The draws keep this order (fail, lose, fail_runs) so a seed replays the same faults.
        if opts.fail_rate > 0 and self._rng.random() < opts.fail_rate:
            return error(503, "service temporarily unavailable (simulated)")
        fields = validate.run_request(body)
        inputs = self._run_inputs(fields)
        if inputs is None:
            return error(404, f"batch {fields['batch_id']} does not exist")
        lose = opts.lose_response_rate > 0 and self._rng.random() < opts.lose_response_rate
        failed = opts.fail_runs > 0 and self._rng.random() < opts.fail_runs
        run = self._runs.create(
            deployment_id, fields, run_seconds=opts.run_seconds, failed=failed, inputs=inputs
        )
        if run.input_dir:
            self._paths.add_folder(run.input_dir)
        # Drawn last, so the seeded order of the other faults is unchanged.
        if opts.gateway_error_rate > 0 and self._rng.random() < opts.gateway_error_rate:
            return error(502, "bad gateway (simulated; the run was created)")
        data = run.to_spec(run.start_ns)
        # The spec answers a fresh run as RUNNING even when run_seconds is 0.
        data.update(status=RUNNING, finish_timestamp=None, msg=None)
        return Response(status=202, body=data, lose=lose)

    def _run_inputs(self, fields: dict[str, Any]) -> tuple[InputFile, ...] | None:
        """The files a new run sees: its batch's (None when the batch does not exist), else its
        input_dir's on the simulated drive and among the paths tests added."""
        if "batch_id" in fields:
            return self._batches.inputs(fields["batch_id"])
        input_dir = fields.get("input_dir")
        if not input_dir:
            return ()
        found = self._paths.files_under(input_dir)
        root = self.options.drive_root
        if root is not None:
            found.update(
                (f.path, f) for f in drive.visible_files(root, input_dir, self.options.sync_lag_s)
            )
        return tuple(found[path] for path in sorted(found))

    def _results(self, run_id: str, query: dict[str, list[str]]) -> Response:
        """GET /v2/apps/runs/{id}/results: one page; files only once the run is COMPLETE."""
        q = validate.results_query(query)
        found = self._runs.get_with_inputs(run_id)
        if found is None:
            return error(404, "run not found")
        spec, run = found
        if run.batch_id is not None:
            files = [(f, self._batches.full_path(run.batch_id, f.path)) for f in run.inputs]
        else:
            base = (run.input_dir or "").rstrip("/")
            files = [(f, f"{base}/{f.path}") for f in run.inputs]
        keys = (run.settings or {}).get("keys")
        custom = keys.get("custom") if isinstance(keys, dict) else None
        page = results_page(spec, files, dict(custom or {}), q, self.options.results_page_size)
        return Response(status=200, body=page)

    def _get_run(self, run_id: str) -> Response:
        run = self._runs.get(run_id)
        if run is None:
            return error(404, "run not found")
        return Response(status=200, body=run)

    def _file_metadata(self, raw: str) -> Response:
        """HEAD /v2/files/{path}: a file's length and mtime, 200 for a folder, else 404.

        Paths tests added come first, then the simulated drive."""
        path = validate.decode_segment(raw)
        found = self._paths.lookup(path)
        root = self.options.drive_root
        if found is False and root is not None:
            found = drive.lookup(root, path, self.options.sync_lag_s)
        if found is True:
            return Response(status=200, content_type="application/json", content_length=0)
        if found is False:
            return Response(status=404, content_length=0)
        return Response(
            status=200,
            content_type="application/octet-stream",
            content_length=found.size,
            headers=(("Last-Modified", email.utils.formatdate(found.mtime, usegmt=True)),),
        )
