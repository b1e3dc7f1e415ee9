"""Uploads stream from disk: bodies go out chunk by chunk (memory does not grow with the file),
and a file whose size is not the expected one fails with UploadSourceError before its body can
complete. Over a transport that pulls the body like a socket (tests.hub_helpers)."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.hub_helpers import ClientFactory
from watcher.hub.errors import HubError, UploadSourceError
from watcher.hub.source import CHUNK_BYTES, open_range

MiB = 1024 * 1024


@pytest.fixture
def client_factory() -> Iterator[ClientFactory]:
    with ClientFactory() as factory:
        yield factory


class Receiver:
    """A handler that pulls a streamed body chunk by chunk, keeping only sizes and a hash; an
    `after_first_chunk` hook can change the file mid-send."""

    def __init__(self, after_first_chunk: Callable[[], None] | None = None) -> None:
        self.after_first_chunk = after_first_chunk
        self.chunks: list[int] = []
        self.sha = hashlib.sha256()
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        with pytest.raises(httpx.RequestNotRead):
            _ = request.content  # the body was never joined in memory
        assert isinstance(request.stream, httpx.SyncByteStream)
        for chunk in request.stream:
            self.chunks.append(len(chunk))
            self.sha.update(chunk)
            if len(self.chunks) == 1 and self.after_first_chunk is not None:
                self.after_first_chunk()
        if "/parts/" in request.url.path:
            return httpx.Response(201, json={"part_id": "p", "part_num": 1})
        return httpx.Response(204)


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def test_upload_streams_in_chunks_with_content_length(client_factory, tmp_path):
    """A 3.5 MiB file goes out as 4 chunks of at most 1 MiB under Content-Length, not chunked
    encoding, byte for byte."""
    data = os.urandom(3 * MiB + MiB // 2)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    rx = Receiver()
    client = client_factory(rx, streaming=True)
    client.batches.upload_file(batch_id=1, filename="f.bin", path=path, size=len(data))
    assert rx.chunks == [MiB, MiB, MiB, MiB // 2]
    assert rx.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    req = rx.requests[0]
    assert req.headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in req.headers


def test_memory_stays_flat_while_uploading_50_mb(client_factory, tmp_path):
    """Uploading a 50 MB file (sparse) allocates a few MiB at most: tracemalloc's peak stays
    far below the file size, for a whole file and for a 20 MB part."""
    size = 50 * 1000 * 1000
    path = sparse(tmp_path / "big.bin", size)
    rx = Receiver()
    client = client_factory(rx, streaming=True)
    tracemalloc.start()
    try:
        client.batches.upload_file(batch_id=1, filename="big.bin", path=path, size=size)
        _, whole_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        client.batches.upload_part(
            session_id="s", part_num=1, path=path, offset=MiB, length=20 * MiB, file_size=size
        )
        _, part_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(rx.chunks) == size + 20 * MiB
    assert max(rx.chunks) <= CHUNK_BYTES
    assert whole_peak < 4 * MiB, f"peak {whole_peak / MiB:.1f} MiB for a 50 MB upload"
    assert part_peak < 4 * MiB, f"peak {part_peak / MiB:.1f} MiB for a 20 MiB part"


def test_part_sends_exactly_its_byte_range(client_factory, tmp_path):
    """upload_part sends bytes [offset, offset + length) of the file, the last part short."""
    data = os.urandom(25)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        num = int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(201, json={"part_id": f"p{num}", "part_num": num})

    client = client_factory(handler)
    ids = [
        client.batches.upload_part(
            session_id="s", part_num=n, path=path, offset=off, length=ln, file_size=25
        )
        for n, off, ln in ((1, 0, 10), (2, 10, 10), (3, 20, 5))
    ]
    assert ids == ["p1", "p2", "p3"]
    assert [r.content for r in seen] == [data[:10], data[10:20], data[20:]]
    assert [r.headers["content-length"] for r in seen] == ["10", "10", "5"]


def test_empty_file_uploads_with_content_length_zero(client_factory, tmp_path):
    """An empty file is a PUT with Content-Length 0."""
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    seen: list[httpx.Request] = []
    client = client_factory(lambda r: seen.append(r) or httpx.Response(204))
    client.batches.upload_file(batch_id=1, filename="empty.txt", path=path, size=0)
    assert seen[0].headers["content-length"] == "0" and seen[0].content == b""


@pytest.mark.parametrize("on_disk", [9, 11])
def test_size_mismatch_on_open_fails_before_sending(client_factory, tmp_path, on_disk):
    """A file shorter or longer than `size` is an UploadSourceError (not a HubError) naming both
    sizes, and no request is sent."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * on_disk)
    client = client_factory(lambda r: pytest.fail("must not send"))
    with pytest.raises(UploadSourceError) as info:
        client.batches.upload_file(batch_id=1, filename="f", path=path, size=10)
    err = info.value
    assert not isinstance(err, HubError)
    assert (err.local_path, err.expected_size, err.actual_size) == (str(path), 10, on_disk)
    assert str(err) == (f"{path}: size on disk is {on_disk} bytes, expected 10: the file changed")


def test_part_checks_the_whole_file_size(client_factory, tmp_path):
    """With file_size, a part fails when the file is not that long, even if its own range is
    there; without, the file must only reach the range's end. A range past file_size is a bug."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 30)
    client = client_factory(lambda r: httpx.Response(201, json={"part_id": "p", "part_num": 1}))
    with pytest.raises(UploadSourceError, match="expected 31"):
        client.batches.upload_part(
            session_id="s", part_num=1, path=path, offset=0, length=10, file_size=31
        )
    assert client.batches.upload_part(session_id="s", part_num=1, path=path, offset=20, length=10)
    with pytest.raises(UploadSourceError, match="expected at least 31"):
        client.batches.upload_part(session_id="s", part_num=1, path=path, offset=21, length=10)
    with pytest.raises(ValueError, match="past file_size"):
        client.batches.upload_part(
            session_id="s", part_num=1, path=path, offset=25, length=10, file_size=30
        )


def test_file_growing_mid_send_fails_before_the_last_chunk(client_factory, tmp_path):
    """A file that grows while it is sent: UploadSourceError, and the last chunk never leaves,
    so the server never gets the declared length (it stores nothing)."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * (3 * MiB))

    def grow() -> None:
        with path.open("ab") as f:
            f.write(b"more")

    rx = Receiver(after_first_chunk=grow)
    client = client_factory(rx, streaming=True)
    with pytest.raises(UploadSourceError) as info:
        client.batches.upload_file(batch_id=1, filename="f", path=path, size=3 * MiB)
    assert info.value.actual_size == 3 * MiB + 4
    assert sum(rx.chunks) == 2 * MiB < 3 * MiB


def test_file_shrinking_mid_send_fails(client_factory, tmp_path):
    """A file truncated while it is sent: UploadSourceError saying where it ended."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * (3 * MiB))

    def shrink() -> None:
        os.truncate(path, MiB + 100)

    rx = Receiver(after_first_chunk=shrink)
    client = client_factory(rx, streaming=True)
    with pytest.raises(UploadSourceError, match=f"ended at {MiB + 100} bytes") as info:
        client.batches.upload_file(batch_id=1, filename="f", path=path, size=3 * MiB)
    assert info.value.actual_size == MiB + 100
    assert sum(rx.chunks) == MiB + 100


def test_missing_directory_and_fifo_are_source_errors(client_factory, tmp_path):
    """A vanished file, a folder and a FIFO (which must not hang the open) are
    UploadSourceErrors with no actual size; nothing is sent."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    client = client_factory(lambda r: pytest.fail("must not send"))
    cases = {
        tmp_path / "gone.pdf": "cannot open: No such file or directory",
        tmp_path: "not a regular file",
        fifo: "not a regular file",
    }
    for path, message in cases.items():
        with pytest.raises(UploadSourceError) as info:
            client.batches.upload_file(batch_id=1, filename="f", path=path, size=0)
        assert str(info.value) == f"{path}: {message}"
        assert info.value.actual_size is None


def test_open_range_closes_the_file_when_abandoned(tmp_path):
    """Leaving the iterator half-read still closes the file (no ResourceWarning, no fd leak)."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * (2 * MiB))
    before = len(os.listdir("/proc/self/fd"))
    with open_range(path, offset=0, length=2 * MiB, file_size=2 * MiB) as chunks:
        assert len(next(chunks)) == MiB
    assert len(os.listdir("/proc/self/fd")) == before
    with pytest.raises(ValueError), open_range(path, offset=-1, length=1, file_size=None):
        pass
