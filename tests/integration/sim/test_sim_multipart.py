"""Multipart uploads: sessions, parts in order, commit (checked against file_size) and abort."""

from __future__ import annotations

import hashlib
import os
import socket
from urllib.parse import urlsplit

import pytest

from tests.sim_helpers import (
    TOKEN,
    create_batch,
    multipart_upload,
    put_part,
    start_session,
    validate,
    validate_ref,
)

MIB = 1024 * 1024


def _commit(client, session_id, parts):
    return client.post(
        f"/v2/batches/multipart-upload/sessions/{session_id}",
        json={"action": "commit", "parts": parts},
    )


def test_30_mb_upload_in_small_parts_has_the_right_size_and_sha256(client, sim):
    """A 30 MB file sent in 1 MiB parts lands in the batch with its exact size and sha256."""
    sim.options.part_size = MIB
    data = os.urandom(30 * 1000 * 1000)  # not a multiple of the part size: a short last part
    batch_id = create_batch(client)
    assert multipart_upload(client, batch_id, "scan.tiff", data) == 201
    (batch,) = sim.batches
    assert batch["files"] == {
        "scan.tiff": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    }
    assert sim.upload_sessions == []
    assert all(r.body is None for r in sim.requests if r.method == "PUT")


def test_session_answer_matches_the_spec(client, sim, spec_schemas):
    """Starting a session answers 201 with session_id, part_size and a Location to the session."""
    sim.options.part_size = 4096
    batch_id = create_batch(client)
    resp = client.post(
        "/v2/batches/multipart-upload",
        json={"batch_id": batch_id, "filename": "a.pdf", "file_size": "10000"},  # a string too
    )
    assert resp.status_code == 201
    body = resp.json()
    validate(spec_schemas["multipartUploadSessionResponse"], body)
    assert body["part_size"] == 4096
    assert resp.headers["location"] == (
        f"{sim.url}/v2/batches/multipart-upload/sessions/{body['session_id']}"
    )
    part = put_part(client, body["session_id"], 1, b"x" * 4096)
    assert part.status_code == 201
    validate(spec_schemas["multipartUploadPartResponse"], part.json())
    assert part.json()["part_num"] == 1
    (session,) = sim.upload_sessions
    assert (session["file_size"], session["parts"], session["received"]) == (10000, 1, 4096)


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"batch_id": None}, 400),  # None: the key is left out
        ({"file_size": None}, 400),
        ({"batch_id": "x"}, 400),
        ({"batch_id": 999999}, 404),
        ({"filename": "a/b.pdf"}, 400),
        ({"filename": "n" * 256}, 400),
        ({"file_size": -1}, 400),
        ({"file_size": "ten"}, 400),
    ],
)
def test_invalid_session_requests(client, sim, spec_schemas, changes, status):
    """A session needs an existing batch_id, a one-segment filename and a file_size >= 0."""
    body = {"batch_id": create_batch(client), "filename": "a.pdf", "file_size": 1, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    resp = client.post("/v2/batches/multipart-upload", json=body)
    assert resp.status_code == status
    validate(spec_schemas["error"], resp.json())
    assert sim.upload_sessions == []


def test_parts_out_of_order_are_refused(client, sim):
    """Parts are consecutive from 1: part 2 first, or a gap, gets 400 before its body is read."""
    sim.options.part_size = 10
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 30)["session_id"]
    resp = put_part(client, sid, 2, b"b" * 10)
    assert resp.status_code == 400 and "out of order" in resp.json()["message"]
    assert put_part(client, sid, 1, b"a" * 10).status_code == 201
    assert put_part(client, sid, 3, b"c" * 10).status_code == 400
    assert put_part(client, sid, 0, b"c" * 10).status_code == 400
    assert put_part(client, sid, int("9" * 40), b"c" * 10).status_code == 400
    assert sim.upload_sessions[0]["parts"] == 1


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (11, None, "over part_size"),  # longer than part_size
        (9, None, "not the last part"),  # short, but more of the file follows
        (10, 10, "past file_size"),  # the file is 15 bytes
    ],
)
def test_part_sizes_are_checked(client, sim, first, second, message):
    """Each part is exactly part_size except the last, and none runs past file_size."""
    sim.options.part_size = 10
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 15)["session_id"]
    resp = put_part(client, sid, 1, b"a" * first)
    if second is not None:
        assert resp.status_code == 201
        resp = put_part(client, sid, 2, b"b" * second)
    assert resp.status_code == 400
    assert message in resp.json()["message"]


def test_the_latest_part_can_be_sent_again(client, sim):
    """Re-sending the latest part (a retry) replaces it: the file has the retried bytes."""
    sim.options.part_size = 4
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 6)["session_id"]
    p1 = put_part(client, sid, 1, b"AAAA").json()["part_id"]
    put_part(client, sid, 2, b"xx")
    p2 = put_part(client, sid, 2, b"BB").json()["part_id"]
    assert put_part(client, sid, 1, b"AAAA").status_code == 400  # only the latest part
    assert _commit(client, sid, [{"part_num": 1, "part_id": p1}, {"part_num": 2, "part_id": p2}])
    assert sim.batches[0]["files"]["a.bin"]["sha256"] == hashlib.sha256(b"AAAABB").hexdigest()


def test_commit_checks_the_parts(client, sim, spec_schemas):
    """A commit naming parts out of order, a stale part_id, or too few bytes gets 400."""
    sim.options.part_size = 4
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 10)["session_id"]
    ids = [put_part(client, sid, n, d).json()["part_id"] for n, d in ((1, b"aaaa"), (2, b"bbbb"))]
    listed = [{"part_num": n, "part_id": i} for n, i in enumerate(ids, start=1)]
    for parts in (
        listed[::-1],
        [listed[0], {"part_num": 2, "part_id": "not-it"}],
        listed[:1],
        listed,  # all listed, but 8 of the 10 bytes
    ):
        resp = _commit(client, sid, parts)
        assert resp.status_code == 400
        validate(spec_schemas["error"], resp.json())
    assert "8 bytes" in resp.json()["message"]
    last = put_part(client, sid, 3, b"cc").json()["part_id"]
    resp = _commit(client, sid, [*listed, {"part_num": 3, "part_id": last}])
    assert resp.status_code == 201 and resp.content == b""
    assert sim.batches[0]["files"]["a.bin"]["sha256"] == hashlib.sha256(b"aaaabbbbcc").hexdigest()
    assert _commit(client, sid, []).status_code == 404  # the session is closed


def test_abort_discards_the_session(client, sim):
    """abort answers 201, stores nothing, and the session is gone."""
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 3)["session_id"]
    put_part(client, sid, 1, b"abc")
    resp = client.post(f"/v2/batches/multipart-upload/sessions/{sid}", json={"action": "abort"})
    assert resp.status_code == 201
    assert sim.upload_sessions == [] and sim.batches[0]["files"] == {}
    assert put_part(client, sid, 2, b"").status_code == 404


def test_empty_file_commits_with_no_parts(client, sim):
    """A zero-byte file needs no part."""
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "empty.bin", 0)["session_id"]
    assert _commit(client, sid, []).status_code == 201
    assert sim.batches[0]["files"]["empty.bin"]["size"] == 0


@pytest.mark.parametrize(
    "body",
    [{"action": "finish"}, {"action": "commit"}, {"action": "commit", "parts": [{"part_num": 1}]}],
)
def test_invalid_commit_bodies_are_400(client, spec_schemas, body):
    """The action must be commit or abort; commit needs parts with part_num and part_id."""
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 0)["session_id"]
    resp = client.post(f"/v2/batches/multipart-upload/sessions/{sid}", json=body)
    assert resp.status_code == 400
    validate_ref(spec_schemas, "error", resp.json())


def test_unknown_session_is_404(client, spec_schemas):
    """Parts and commits of a session that doesn't exist get 404."""
    resp = put_part(client, "no-such-session", 1, b"abc")
    assert resp.status_code == 404
    validate(spec_schemas["error"], resp.json())
    assert _commit(client, "no-such-session", []).status_code == 404


def test_commit_after_the_batch_is_deleted_is_404(client, sim):
    """A session whose batch was deleted meanwhile can't commit."""
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 2)["session_id"]
    part_id = put_part(client, sid, 1, b"ab").json()["part_id"]
    client.delete(f"/v2/batches/{batch_id}")
    assert _commit(client, sid, [{"part_num": 1, "part_id": part_id}]).status_code == 404
    assert sim.batches == []


def test_upload_fail_rate_refuses_parts_and_the_retry_succeeds(client, sim):
    """With upload_fail_rate=1 a part gets 503 and isn't counted; sent again later, it is."""
    sim.options.part_size = 4
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 4)["session_id"]
    sim.options.upload_fail_rate = 1.0
    assert put_part(client, sid, 1, b"abcd").status_code == 503
    assert sim.upload_sessions[0]["parts"] == 0
    sim.options.upload_fail_rate = 0.0
    part_id = put_part(client, sid, 1, b"abcd").json()["part_id"]
    assert _commit(client, sid, [{"part_num": 1, "part_id": part_id}]).status_code == 201


def test_a_part_that_raced_another_gets_409(client, sim):
    """Two uploads of the same part at once: the one finishing second gets 409, nothing mixed."""
    sim.options.part_size = 8
    batch_id = create_batch(client)
    sid = start_session(client, batch_id, "a.bin", 8)["session_id"]
    head = (
        f"PUT /api/v2/batches/multipart-upload/sessions/{sid}/parts/1 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 8\r\nConnection: close\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    parts = urlsplit(sim.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as slow:
        slow.sendall(head.encode())
        assert slow.recv(65536).startswith(b"HTTP/1.1 100 ")  # checked: its body is awaited
        slow.sendall(b"slow")
        fast = put_part(client, sid, 1, b"fastfast")
        assert fast.status_code == 201
        slow.sendall(b"slow")
        reply = b""
        while chunk := slow.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 409 ")
    committed = _commit(client, sid, [{"part_num": 1, "part_id": fast.json()["part_id"]}])
    assert committed.status_code == 201
    assert sim.batches[0]["files"]["a.bin"]["sha256"] == hashlib.sha256(b"fastfast").hexdigest()
