"""file_metadata (HEAD /v2/files/{path}), the remote check's one call: None when nothing is there,
the size of a file, an auth error that pauses the hub, and paths percent-encoded per segment."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.hub_helpers import ClientFactory, assert_no_token, catch
from watcher.hub.errors import HubAuthError, HubResponseError, HubTransportError
from watcher.hub.models import FileMetadata


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    with ClientFactory() as factory:
        yield factory


def test_404_is_none(client_factory):
    """Nothing at the path (not synced yet) is None, not an error."""
    client = client_factory(lambda r: httpx.Response(404))
    assert client.file_metadata("acme/ws/fs/Drive/in/a.pdf") is None


def test_200_file_gives_its_size_and_mtime(client_factory):
    """A file's Content-Length is its size (an int) and last-modified is passed on."""
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Length": "10485761",
        "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT",
    }
    client = client_factory(lambda r: httpx.Response(200, headers=headers))
    assert client.file_metadata("acme/a.pdf") == FileMetadata(
        path="acme/a.pdf",
        is_folder=False,
        size=10_485_761,
        last_modified="Wed, 01 Jan 2025 00:00:00 GMT",
    )


def test_200_folder_has_no_size(client_factory):
    """A JSON content type is a folder: no size, no mtime."""
    client = client_factory(
        lambda r: httpx.Response(200, headers={"Content-Type": "application/json; charset=utf-8"})
    )
    meta = client.file_metadata("acme/in")
    assert meta is not None and meta.is_folder and meta.size is None


def test_bad_content_length_is_a_response_error(client_factory):
    """A file whose Content-Length is not an integer is a HubResponseError, not a crash."""

    def handler(request: httpx.Request) -> httpx.Response:
        resp = httpx.Response(200, headers={"Content-Type": "application/octet-stream"})
        resp.headers["Content-Length"] = "lots"
        return resp

    err = catch(lambda: client_factory(handler).file_metadata("acme/a.pdf"), "HEAD")
    assert type(err) is HubResponseError


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth_errors(client_factory, status):
    """401/403 to a HEAD raise HubAuthError (the daemon pauses the hub), with no token."""
    client = client_factory(lambda r: httpx.Response(status))
    err = catch(lambda: client.file_metadata("acme/a.pdf"), "HEAD")
    assert type(err) is HubAuthError
    assert (err.http_status, err.method, err.path) == (status, "HEAD", "/v2/files/acme/a.pdf")
    assert_no_token(err)


def test_a_lost_head_is_a_transport_error(client_factory):
    """A HEAD that got no answer is safe to repeat: HubTransportError."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    err = catch(lambda: client_factory(handler).file_metadata("acme/a.pdf"), "HEAD")
    assert type(err) is HubTransportError


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        (
            "acme/ws/fs/Google Drive/My Drive/a b.pdf",
            "acme/ws/fs/Google%20Drive/My%20Drive/a%20b.pdf",
        ),
        ("acme/in/drop #1/scan#2.pdf", "acme/in/drop%20%231/scan%232.pdf"),
        ("acme/in/100%/50%25.pdf", "acme/in/100%25/50%2525.pdf"),
        (
            "acme/in/Überweisung/façade 日本.pdf",
            "acme/in/%C3%9Cberweisung/fa%C3%A7ade%20%E6%97%A5%E6%9C%AC.pdf",
        ),
        ("acme/in/q?x=1&y+z;v.pdf", "acme/in/q%3Fx%3D1%26y%2Bz%3Bv.pdf"),
        ("/acme//in/a.pdf/", "acme/in/a.pdf"),
    ],
)
def test_path_segments_are_percent_encoded(client_factory, path, raw):
    """Spaces, '#', '%', '?', '+', non-ASCII: each segment is percent-encoded as UTF-8, the '/'
    separators kept, so the server sees exactly the path (nothing becomes a query or fragment)."""
    seen: list[httpx.Request] = []
    client = client_factory(lambda r: seen.append(r) or httpx.Response(404))
    assert client.file_metadata(path) is None
    assert seen[0].method == "HEAD"
    assert seen[0].url.raw_path == f"/api/v2/files/{raw}".encode()
    assert seen[0].url.query == b""


@pytest.mark.parametrize("path", ["", "/", "acme/../etc", "acme/./a"])
def test_paths_that_urls_would_move_are_refused(client_factory, path):
    """An empty path or '.'/'..' segments are a ValueError before anything is sent."""
    client = client_factory(lambda r: pytest.fail("must not send"))
    with pytest.raises(ValueError):
        client.file_metadata(path)
