"""Building the hub client from the config and a token, and telling whether the token changed.

Imports config, the hub adapter and logs (to register the token for redaction).
"""

from __future__ import annotations

import hashlib

from watcher.config import HubConfig
from watcher.hub.client import HubClient
from watcher.logs import register_secret
from watcher.pipeline.calls import EXTRA_WORKERS


def build_client(hub: HubConfig, token: str) -> HubClient:
    """A client for `hub` with `token`; the token is masked in every log line from now on.

    Raises:
        TokenError, ValueError, OSError: the client cannot be built (bad token or CA bundle).
    """
    register_secret(token)
    return HubClient(
        base_url=hub.base_url,
        token=token,
        context=hub.context,
        timeout_s=hub.timeout_seconds,
        connect_timeout_s=hub.connect_timeout_seconds,
        ca_bundle=str(hub.ca_bundle) if hub.ca_bundle else None,
        max_connections=hub.max_concurrency + EXTRA_WORKERS,
    )


def token_digest(token: str) -> str:
    """What the daemon remembers of a token: enough to notice a change, useless to anyone."""
    return hashlib.sha256(token.encode()).hexdigest()
