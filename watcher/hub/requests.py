"""The runDeployment request as data: method, path and JSON body, built once.

`HubClient.run_deployment` sends exactly this; `explain` and `run --dry-run` show it. Pure:
imports only `watcher.hub.models` and `watcher.hub.wire`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.hub.models import build_run_request
from watcher.hub.wire import path_segment

__all__ = ["HubRequest", "run_request"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HubRequest:
    """One request as it goes on the wire (the path is relative to `hub.base_url`)."""

    method: str
    path: str
    body: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body}


def run_request(
    *,
    deployment_id: str,
    input_dir: str | None = None,
    batch_id: int | None = None,
    output_dir: str | None = None,
    version: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> HubRequest:
    """POST /v2/apps/deployments/{deployment_id}/runs with its body (see `build_run_request`).

    Raises:
        TypeError, ValueError: as `build_run_request`.
    """
    body = build_run_request(
        input_dir=input_dir,
        batch_id=batch_id,
        output_dir=output_dir,
        version=version,
        settings=settings,
    )
    path = f"/v2/apps/deployments/{path_segment(deployment_id)}/runs"
    return HubRequest(method="POST", path=path, body=body)
