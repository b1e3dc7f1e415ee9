"""HubSim: the simulator's state and asyncio server, plus the thread and foreground entry points.

Imports no watcher module outside sim/ (least of all hub/), so a client bug can never be
mirrored by the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from watcher.sim.batches import BatchStore
from watcher.sim.files import PathStore
from watcher.sim.http import BodySink, Request, Response, error, serve_connection
from watcher.sim.options import SimOptions
from watcher.sim.recorder import LOST, RecordedRequest, Recorder
from watcher.sim.routes import API_PREFIX, Api
from watcher.sim.runs import RunStore
from watcher.sim.uploads import SessionStore
from watcher.sim.validate import BadRequest

# The StreamReader's buffer limit: reading pauses past twice this, so uploads arrive in big
# reads. (Request heads have their own limit, http.MAX_HEADER_BYTES, enforced by h11.)
_STREAM_LIMIT = 1024 * 1024
_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


class HubSim:
    """The simulator: runs, batches, known paths and recorded requests, over HTTP/1.1 on asyncio.

    Handlers run on the simulator's loop thread; the public accessors are safe from any thread.
    """

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self._runs = RunStore()
        self._paths = PathStore()
        self._batches = BatchStore()
        self._sessions = SessionStore()
        self._recorder = Recorder()
        self._api = Api(options, self._runs, self._paths, self._batches, self._sessions)
        self._connections_accepted = 0
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._url: str | None = None

    # ----------------------------------------------------------------- public, any thread
    @property
    def url(self) -> str:
        """The API root, e.g. http://127.0.0.1:41234/api."""
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        return self._recorder.snapshot()

    @property
    def runs(self) -> list[dict[str, Any]]:
        """A snapshot of created runs in the spec `run` shape plus output_dir, version, settings
        and `inputs`: the files the run saw when it started, [{"path", "size", "sha256"}] (the
        batch's files, or input_dir's visible files on the drive; sha256 None for the latter)."""
        return self._runs.snapshot()

    @property
    def batches(self) -> list[dict[str, Any]]:
        """A snapshot of existing batches: batchInfo plus `files`, {name: {"size", "sha256"}}."""
        return self._batches.snapshot()

    @property
    def upload_sessions(self) -> list[dict[str, Any]]:
        """The multipart sessions neither committed nor aborted: session_id, batch_id, filename,
        file_size, part_size, parts (accepted so far) and received (their bytes)."""
        return self._sessions.snapshot()

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the server has accepted (proves keep-alive reuse)."""
        return self._connections_accepted

    @property
    def open_connections(self) -> int:
        """How many client connections are open now."""
        return len(self._writers)

    def set_run_status(self, run_id: str, status: str) -> None:
        """Force a run's status from now on (e.g. STOPPED_AT_CHECKPOINT, CANCELLED).

        Raises KeyError when no such run exists.
        """
        self._runs.set_status(run_id, status)

    def add_path(self, path: str, size: int | None = None) -> None:
        """Make HEAD /v2/files/{path} answer 200: a folder when `size` is None, else a file."""
        if size is None:
            self._paths.add_folder(path)
        else:
            self._paths.add_file(path, size)

    def add_batch(self, name: str = "batch", workspace: str | None = None) -> int:
        """Create an empty batch, as POST /v2/batches would; its id."""
        return self._batches.create(name, workspace)

    def request_stop(self) -> None:
        """Ask a running `run()` to stop; callable from any thread."""
        loop, event = self._loop, self._stop_requested
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing to stop
                loop.call_soon_threadsafe(event.set)

    # ----------------------------------------------------------------- lifecycle, loop thread
    async def start(self) -> None:
        """Bind the listening socket and open the record file; `url` is valid afterwards."""
        if self._server is not None:
            raise RuntimeError("the simulator is already started")
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._recorder.open(self.options.record)
        try:
            self._server = await asyncio.start_server(
                self._handle_connection,
                host=self.options.host,
                port=self.options.port,
                limit=_STREAM_LIMIT,
                reuse_address=True,
            )
        except BaseException:
            self._recorder.close()
            raise
        sockname = self._server.sockets[0].getsockname()
        host = sockname[0]
        if ":" in host:
            host = f"[{host}]"
        self._url = f"http://{host}:{sockname[1]}{API_PREFIX}"

    async def stop(self) -> None:
        """Stop listening, drop open connections (keep-alive clients would hold us forever)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Closing the transports ends idle handlers with EOF; only busy ones (latency sleep,
        # lingering close) are left to cancel.
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            _done, pending = await asyncio.wait(set(self._handlers), timeout=0.25)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if server is not None:
            await server.wait_closed()
        self._recorder.close()

    async def run(self, *, ready: Callable[[HubSim], None] | None = None) -> None:
        """Start, call `ready(self)`, serve until `request_stop()`, then stop."""
        await self.start()
        try:
            if ready is not None:
                ready(self)
            assert self._stop_requested is not None
            await self._stop_requested.wait()
        finally:
            await self.stop()

    # ----------------------------------------------------------------- connections
    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self._connections_accepted += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Headers and body leave in one write, but a small write must not wait on a delayed ACK.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await serve_connection(reader, writer, self)
        except asyncio.CancelledError:
            # Only stop() cancels a handler. Ending normally keeps 3.11's StreamReaderProtocol
            # from logging the cancellation as an unhandled error.
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()

    async def respond(self, request: Request) -> Response:
        """Answer one complete request (after latency_ms) and record it."""
        if self.options.latency_ms > 0:
            await asyncio.sleep(self.options.latency_ms / 1000)
        try:
            response = self._api.dispatch(request)
        except BadRequest as exc:
            response = error(exc.status, exc.message)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            response = error(500, f"simulator error: {type(exc).__name__}", close=True)
        self._record(
            request, _json_or_none(request.body), LOST if response.lose else response.status
        )
        return response

    def open_body(self, request: Request) -> BodySink | Response | None:
        """Where a request's body goes: streamed for uploads, else buffered."""
        try:
            return self._api.open_body(request)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            return error(500, f"simulator error: {type(exc).__name__}", close=True)

    def refused(self, request: Request, response: Response) -> None:
        """Record a request whose body was refused unread."""
        self._record(request, None, response.status)

    def _record(self, request: Request, body: Any, status: int) -> None:
        self._recorder.add(
            method=request.method, path=request.path, query=request.query, body=body, status=status
        )


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


# --------------------------------------------------------------------- entry points
@contextlib.contextmanager
def serve_in_thread(options: SimOptions) -> Iterator[HubSim]:
    """Run a simulator on its own loop in a (non-daemon) thread; stop and join it on exit.

    Raises whatever binding the socket raised (e.g. OSError for a port in use).
    """
    sim = HubSim(options)
    started = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(sim.run(ready=lambda _sim: started.set()))
        except BaseException as exc:
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=target, name="hubsim", daemon=False)
    thread.start()
    started.wait()
    if failure:
        thread.join()
        raise failure[0]
    try:
        yield sim
    finally:
        sim.request_stop()
        thread.join(timeout=30)
        if thread.is_alive():  # pragma: no cover - a hang here is a simulator bug
            raise RuntimeError("the simulator thread did not stop")
        if failure:
            raise failure[0]


def run_forever(options: SimOptions) -> int:
    """Serve until SIGINT/SIGTERM; print the API root URL as the first stdout line. Returns 0.

    Raises OSError when the address can't be bound.
    """

    def ready(sim: HubSim) -> None:
        # Handlers first: a parent may send SIGTERM as soon as it has read the URL.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, sim.request_stop)
        print(sim.url, flush=True)

    _tune_malloc()
    asyncio.run(HubSim(options).run(ready=ready))
    return 0


def _tune_malloc() -> None:
    """Keep glibc from mapping and unmapping memory for every 256 KiB socket read.

    Its dynamic thresholds make each big upload chunk a fresh mmap (or a heap trim and regrow),
    and the page faults cost a third of the simulator's CPU per uploaded byte; fixed thresholds
    reuse the same few MiB. Only for a process the simulator owns (run_forever); a no-op off glibc.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_TRIM_THRESHOLD, 64 * 1024 * 1024)
    mallopt(_M_MMAP_THRESHOLD, 4 * 1024 * 1024)
