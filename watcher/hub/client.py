"""`HubClient`: the AI Hub REST client (thread-safe, pooled keep-alive connections); typed results.
Runs and files here; batches and uploads in `client.batches` (`watcher.hub.batches`).

Every request goes through `watcher.hub.sender` and so `watcher.hub.translate`: only `Hub*`
errors leave. Imports only the core and `watcher.hub`; never config, ledger or pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final

import httpx

from watcher import __version__
from watcher.errors import TokenError
from watcher.hub.batches import BatchClient
from watcher.hub.errors import HubResponseError
from watcher.hub.loop_post import LoopPoster
from watcher.hub.models import FileMetadata, Run
from watcher.hub.pool import ConnectionPool
from watcher.hub.requests import run_request
from watcher.hub.results import MAX_PAGES, ResultOptions, ResultPages, results_params
from watcher.hub.sender import Sender
from watcher.hub.wire import as_int, encode_path, json_body, json_type, list_params, path_segment

__all__ = ["USER_AGENT", "HubClient"]

USER_AGENT: Final = f"aihub-watcher/{__version__}"


class HubClient:
    """AI Hub API client; safe to share between worker threads.

    Every method raises only `watcher.hub.errors.HubError` subclasses for hub or network failures
    (never httpx exceptions). Using a closed client raises RuntimeError (a bug).

    Connections: a `ConnectionPool` of `max_connections` single-connection httpx.Clients, each
    lent to one thread at a time (see there why not one shared httpx.Client). `batches` sends
    through the same pool, so uploads and run calls share its connections and its limit.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        context: str | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        ca_bundle: str | None = None,
        max_connections: int = 16,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Build the client. `base_url` is the API root, e.g. https://aihub.instabase.com/api.

        Raises:
            ValueError: base_url is not an http(s) URL without query, or a limit is not positive.
            TokenError: the token is empty or not sendable in an HTTP header.
            OSError: `ca_bundle` cannot be read or holds no usable certificate (ssl.SSLError).
        """
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
            raise ValueError(f"base_url must be an http(s) URL without query: {base_url!r}")
        if timeout_s <= 0 or connect_timeout_s <= 0 or max_connections < 1:
            raise ValueError("timeouts and max_connections must be positive")
        # Checked here, because h11 would otherwise reject the header at send time with the
        # value in its message, and the message would carry the token.
        if not token or not token.isascii() or not token.isprintable() or token != token.strip():
            raise TokenError("the API token is empty or has characters not allowed in a header")
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._context = context or None
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if self._context is not None:
            headers["IB-Context"] = self._context
        self._pool = ConnectionPool(
            size=max_connections,
            base_url=self._base_url,
            headers=headers,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            ca_bundle=ca_bundle,
            transport=transport,
        )
        self._sender = Sender(self._pool, secret=token, pool_timeout_s=timeout_s)
        self._batches = BatchClient(self._sender)
        self._poster: LoopPoster | None = None
        if self._pool.direct:
            self._poster = LoopPoster(
                base_url=self._base_url,
                headers=headers,
                timeout_s=timeout_s,
                connect_timeout_s=connect_timeout_s,
                ssl_context=self._pool.ssl_context,
                secret=token,
                size=max_connections,
            )

    def __repr__(self) -> str:
        return f"HubClient(base_url={self._base_url!r}, context={self._context!r})"

    @property
    def base_url(self) -> str:
        """The API root this client talks to (no trailing slash)."""
        return self._base_url

    @property
    def batches(self) -> BatchClient:
        """Batch and upload operations, over this client's connections (closed with it)."""
        return self._batches

    @property
    def context(self) -> str | None:
        """The IB-Context header value, if configured."""
        return self._context

    @property
    def loop_poster(self) -> LoopPoster | None:
        """The run POST on the event loop (`LoopPoster`), with this client's token, headers,
        TLS and timeouts; None behind a proxy or a test transport (then `run_deployment`)."""
        return self._poster

    def close(self) -> None:
        """Close every connection. Idempotent; later calls raise RuntimeError."""
        self._pool.close()
        if self._poster is not None:
            self._poster.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- operations ---

    def run_deployment(
        self,
        *,
        deployment_id: str,
        input_dir: str | None = None,
        batch_id: int | None = None,
        output_dir: str | None = None,
        version: str | None = None,
        settings: Mapping[str, Any] | None = None,
        send_before: float | None = None,
    ) -> Run:
        """POST /v2/apps/deployments/{deployment_id}/runs; the created run (status 202).

        `send_before` (time.time()): the POST is not sent after it (HubNotSentError).

        Raises:
            HubAmbiguousError: the request may have reached the server but no answer came back.
            HubResponseError: 2xx whose body is not a run (the run may exist).
            HubTransportError, HubStatusError subclasses: see watcher.hub.errors.
        """
        req = run_request(
            deployment_id=deployment_id,
            input_dir=input_dir,
            batch_id=batch_id,
            output_dir=output_dir,
            version=version,
            settings=settings,
        )
        resp = self._sender.request(req.method, req.path, body=req.body, send_before=send_before)
        return Run.from_json(
            json_body(resp, req.method, req.path), method=req.method, path=req.path
        )

    def get_run(self, run_id: str) -> Run:
        """GET /v2/apps/runs/{run_id}.

        Raises:
            HubTransportError, HubResponseError, HubStatusError subclasses (404: HubRejectedError).
        """
        path = f"/v2/apps/runs/{path_segment(run_id)}"
        resp = self._sender.request("GET", path)
        return Run.from_json(json_body(resp, "GET", path), method="GET", path=path)

    def list_runs(
        self,
        *,
        deployment_id: str | None = None,
        status: Sequence[str] | None = None,
        from_timestamp: int | None = None,
        to_timestamp: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: str | None = None,
        order: str | None = None,
    ) -> list[Run]:
        """GET /v2/apps/runs with filters (timestamps in Unix seconds; `status` repeated).

        The server defaults `from_timestamp` to 24 hours ago when it is not given.

        Raises:
            ValueError: a timestamp looks like ms/ns, or sort_by/order is not a spec value.
            HubTransportError, HubResponseError, HubStatusError subclasses.
        """
        params = list_params(
            deployment_id=deployment_id,
            status=status,
            from_timestamp=from_timestamp,
            to_timestamp=to_timestamp,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            order=order,
        )
        path = "/v2/apps/runs"
        resp = self._sender.request("GET", path, params=params)
        data = json_body(resp, "GET", path)
        if not isinstance(data, Mapping):
            raise HubResponseError(
                f"run list is not a JSON object, got {json_type(data)}", method="GET", path=path
            )
        # Serialisers that omit empty repeated fields send no "runs" at all for an empty page.
        items = data.get("runs")
        if items is None:
            return []
        if not isinstance(items, list):
            raise HubResponseError(
                f"'runs' must be a list, got {json_type(items)}", method="GET", path=path
            )
        return [Run.from_json(item, method="GET", path=path) for item in items]

    def iter_runs(
        self,
        *,
        page_size: int = 100,
        deployment_id: str | None = None,
        status: Sequence[str] | None = None,
        from_timestamp: int | None = None,
        to_timestamp: int | None = None,
        sort_by: str | None = None,
        order: str | None = None,
    ) -> Iterator[Run]:
        """Every matching run, fetched page by page with limit/offset; each run id once.

        Stops on a short page, and on a page with nothing new (a server ignoring `offset`
        must not loop forever). Raises what `list_runs` raises, while iterating.
        """
        if page_size < 1:
            raise ValueError("page_size must be positive")
        seen: set[str] = set()
        offset = 0
        while True:
            page = self.list_runs(
                deployment_id=deployment_id,
                status=status,
                from_timestamp=from_timestamp,
                to_timestamp=to_timestamp,
                limit=page_size,
                offset=offset,
                sort_by=sort_by,
                order=order,
            )
            new = [run for run in page if run.id not in seen]
            for run in new:
                seen.add(run.id)
                yield run
            if len(page) < page_size or not new:
                return
            offset += len(page)

    def fetch_run_results(
        self,
        run_id: str,
        *,
        options: ResultOptions | None = None,
        max_pages: int = MAX_PAGES,
    ) -> dict[str, Any]:
        """GET /v2/apps/runs/{run_id}/results, every page (`file_offset` advanced by each page's
        files while `has_more`), merged: the first page's fields, all `files` in order, has_more
        false. `options` are query flags (`include_confidence_scores`, ...; bools as true/false).

        Raises:
            ValueError: an option that is `file_offset` or not a str/bool/int.
            HubResponseError: a page that is not a results object, has_more with no files, or
                more than `max_pages` pages.
            HubTransportError, HubStatusError subclasses (404: HubRejectedError).
        """
        path = f"/v2/apps/runs/{path_segment(run_id)}/results"
        pages = ResultPages(method="GET", path=path, max_pages=max_pages)
        offset: int | None = 0
        while offset is not None:
            resp = self._sender.request("GET", path, params=results_params(options, offset))
            offset = pages.add(json_body(resp, "GET", path))
        return pages.merged()

    def file_metadata(self, path: str) -> FileMetadata | None:
        """HEAD /v2/files/{path}: file or folder metadata, or None when nothing is there (404).

        Raises:
            ValueError: empty path or '.'/'..' segments.
            HubTransportError, HubResponseError, HubStatusError subclasses (not for 404).
        """
        req_path = f"/v2/files/{encode_path(path)}"
        resp = self._sender.request("HEAD", req_path, allow_404=True)
        if resp.status_code == 404:
            return None
        content_type = resp.headers.get("content-type", "")
        is_folder = content_type.split(";")[0].strip().lower() == "application/json"
        size: int | None = None
        if not is_folder and "content-length" in resp.headers:
            size = as_int(resp.headers["content-length"])
            if size is None:
                raise HubResponseError(
                    "Content-Length is not an integer", method="HEAD", path=req_path
                )
        return FileMetadata(
            path=path,
            is_folder=is_folder,
            size=size,
            last_modified=None if is_folder else resp.headers.get("last-modified"),
        )
