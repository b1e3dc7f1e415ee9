"""Fixtures for the daemon-level tests: a random token and a simulator that requires it; for
the hub transports, no proxy in the environment and a self-signed certificate."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture
def sim(token: str) -> Iterator[Any]:
    from watcher.sim import SimOptions, serve_in_thread

    with serve_in_thread(SimOptions(token=token, seed=7)) as s:
        yield s


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    """A watched folder, a state_dir and the folders post-run actions move drops into."""
    out = {name: tmp_path / name for name in ("watch", "state", "done", "failed")}
    for path in out.values():
        path.mkdir()
    return out


PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_env_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy in the environment: the hub talks to the test server directly."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no trust store knows, made with the openssl CLI."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key
