"""`PipelineService`: what the daemon, the reloader and the systemd pings need of a pipeline.

Two implementations: `Pipeline` (the real one) and `DryRunPipeline` (`run --dry-run`: logs the
requests instead of sending them). Imports only the core and the hub client's type.
"""

from __future__ import annotations

from typing import Protocol

from watcher.config import Config
from watcher.hub.client import HubClient
from watcher.model import ReadyDrop
from watcher.pipeline.state import Forget


class PipelineService(Protocol):
    """The daemon's view of a pipeline: wiring, lifecycle, and the counters it reports."""

    @property
    def paused(self) -> bool: ...

    def set_forget(self, forget: Forget) -> None: ...

    def is_known(self, rule: str, drop: str) -> bool: ...

    async def on_ready(self, ready: ReadyDrop) -> None: ...

    def stale_loops(self, max_age_s: float) -> list[str]: ...

    def counts(self) -> dict[str, int]: ...

    def update_config(self, config: Config) -> None: ...

    def replace_client(self, client: HubClient) -> None: ...

    async def startup(self) -> None: ...

    async def run(self) -> None: ...

    async def drain(self, timeout_s: float) -> int: ...

    def close(self) -> None: ...
