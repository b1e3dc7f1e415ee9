"""File metadata (HEAD /v2/files/{path}): folders from runs, registered files, 404s."""

from __future__ import annotations

import email.utils
import time
from urllib.parse import quote

from tests.sim_helpers import submit

ODD_DIR = "org/ws/fs/Instabase Drive/In box #1?/ünïcödé 100% done"


def test_head_folder_of_a_run_input_dir(client, sim):
    """HEAD on a run's input_dir or a parent (encoded space, #, ?, %, unicode) is a folder."""
    assert submit(client, input_dir=ODD_DIR).status_code == 202
    for path in (ODD_DIR, "org/ws/fs/Instabase Drive/In box #1?", "org", ODD_DIR + "/"):
        resp = client.head("/v2/files/" + quote(path, safe="/"))
        assert resp.status_code == 200, path
        assert resp.headers["content-type"] == "application/json"
    raw_paths = [r.path for r in sim.requests if r.method == "HEAD"]
    assert "%23" in raw_paths[0] and "%3F" in raw_paths[0] and "%C3%BC" in raw_paths[0]


def test_head_unknown_path_is_404(client):
    """HEAD on a path no run or add_path mentions is 404; a partial segment is not a folder."""
    assert submit(client, input_dir="org/ws/fs/Drive/in").status_code == 202
    assert client.head("/v2/files/org/ws/fs/Driv").status_code == 404
    assert client.head("/v2/files/" + quote("other/#x?", safe="/")).status_code == 404


def test_head_registered_file_and_folder(client, sim):
    """add_path registers files (octet-stream, Content-Length, last-modified) and folders."""
    name = "org/ws/fs/Drive/x y/report #2?.pdf"
    sim.add_path(name, size=1234)
    sim.add_path("org/ws/fs/Drive/empty folder")
    resp = client.head("/v2/files/" + quote(name, safe="/"))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.headers["content-length"] == "1234"
    modified = email.utils.parsedate_to_datetime(resp.headers["last-modified"])
    assert abs(modified.timestamp() - time.time()) < 60
    for folder in ("org/ws/fs/Drive/x y", "org/ws/fs/Drive/empty folder"):
        resp = client.head("/v2/files/" + quote(folder, safe="/"))
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/json"
    # The connection still works after HEAD answers that announce a length but carry no body.
    assert client.get("/v2/apps/runs").status_code == 200


def test_files_other_methods_are_405(client):
    """Only HEAD is served under /v2/files."""
    resp = client.get("/v2/files/org/a")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "HEAD"
