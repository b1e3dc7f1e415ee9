"""Config reload (SIGHUP or a changed file) and token rotation, applied atomically or not at all.

Imports config, the pipeline, detect, the hub client builder and sdnotify.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import structlog

from watcher.app.hubclient import build_client, token_digest
from watcher.config import Config, diff_configs, load_config, token_path
from watcher.detect import Detector
from watcher.errors import ConfigError, TokenError
from watcher.hub.client import HubClient
from watcher.pipeline.service import PipelineService
from watcher.sdnotify import Notifier

log = structlog.get_logger("watcher.daemon")

# How often the config file and the token source are checked for changes. A stat per second
# is cheaper than an inotify watch on /etc and also sees symlink swaps (ConfigMaps, credentials).
FILE_CHECK_S = 1.0
# After a change, wait this long and look again, so a writer that is not atomic can finish.
SETTLE_EDIT_S = 0.2

FileState = tuple[int, int, int]


def file_state(path: Path | None) -> FileState | None:
    """(inode, size, mtime) of `path`, or None when it is missing or unreadable."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def content_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Reloader:
    """Owns the current config and token digest; swaps in a new config, client and rules."""

    def __init__(
        self,
        *,
        config_path: Path,
        config: Config,
        token: str,
        pipeline: PipelineService,
        detector: Detector,
        notifier: Notifier,
        apply_log_level: Callable[[str], None] | None = None,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self._token_digest = token_digest(token)
        self._config_digest = content_digest(config_path)
        self._pipeline = pipeline
        self._detector = detector
        self._notifier = notifier
        # None when --log-level (or $AIHUB_WATCHER_LOG_LEVEL) overrides the config's log_level.
        self._apply_log_level = apply_log_level
        self._lock = asyncio.Lock()
        self.requested = asyncio.Event()

    async def serve_requests(self) -> None:
        """Reload each time `requested` is set (SIGHUP)."""
        while True:
            await self.requested.wait()
            self.requested.clear()
            await self.reload(reason="signal")

    async def reload(self, *, reason: str) -> None:
        """Load and validate the config; swap it in atomically, or keep the old one."""
        async with self._lock:
            self._notifier.reloading()
            try:
                await self._reload(reason)
            finally:
                self._notifier.ready()

    async def _reload(self, reason: str) -> None:
        self._config_digest = content_digest(self.config_path)
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            self._failed(reason, [str(i) for i in exc.issues if i.severity == "error"])
            return
        old = self.config
        diff = diff_configs(old, new)
        # Build the new client before changing anything, so a bad CA bundle or token keeps
        # the whole old configuration (atomic reload).
        try:
            fresh = self._client_if_changed(new, force=diff.hub_changed)
        except (TokenError, ValueError, OSError) as exc:
            self._failed(reason, [f"hub: {exc}"])
            return
        if new.state_dir != old.state_dir:
            log.warning("config.restart_needed", key="state_dir", using=str(old.state_dir))
        if new.state != old.state:
            log.warning("config.restart_needed", key="state", using=old.state.backend)
        if new.metrics != old.metrics:
            log.warning("config.restart_needed", key="metrics", using=old.metrics.listen)
        self.config = new
        if fresh is not None:
            self._pipeline.replace_client(fresh)
        self._pipeline.update_config(new)
        self._detector.update_rules(new.rules)
        if new.log_level != old.log_level and self._apply_log_level is not None:
            self._apply_log_level(new.log_level)
        log.info(
            "config.reloaded",
            reason=reason,
            added=list(diff.added),
            removed=list(diff.removed),
            changed=list(diff.changed),
            hub_changed=diff.hub_changed,
            token_changed=fresh is not None and not diff.hub_changed,
        )

    def _failed(self, reason: str, issues: list[str]) -> None:
        log.error(
            "config.reload_failed",
            path=str(self.config_path),
            reason=reason,
            issues=issues,
            hint="still running on the previous rules",
        )

    def _client_if_changed(self, config: Config, *, force: bool) -> HubClient | None:
        """A client for a changed token or changed hub settings; None when nothing changed.

        Raises:
            TokenError, ValueError, OSError: the new client cannot be built.
        """
        try:
            token = config.hub.read_token()
        except TokenError as exc:
            if not force:
                log.error("token.missing", error=str(exc), hint="keeping the previous token")
                return None
            raise
        digest = token_digest(token)
        if digest == self._token_digest and not force:
            return None
        client = build_client(config.hub, token)
        self._token_digest = digest
        return client

    # --- watching the files -----------------------------------------------------------------

    async def watch_files(self) -> None:
        """Reload when the config file's content changes; rebuild the client when the token does."""
        config_state = file_state(self.config_path)
        token_state = self._token_file_state()
        while True:
            await asyncio.sleep(FILE_CHECK_S)
            now_state = file_state(self.config_path)
            if now_state != config_state and now_state is not None:
                await asyncio.sleep(SETTLE_EDIT_S)
                if file_state(self.config_path) != now_state:
                    continue
                config_state = now_state
                # One attempt per content (SIGHUP records what it loaded too): a broken save
                # logs one error, and an edit followed by SIGHUP reloads once.
                if content_digest(self.config_path) != self._config_digest:
                    await self.reload(reason="file changed")
                    token_state = self._token_file_state()
                continue
            new_token_state = self._token_file_state()
            if new_token_state != token_state:
                token_state = new_token_state
                self._rotate_token()

    def _rotate_token(self) -> None:
        try:
            fresh = self._client_if_changed(self.config, force=False)
        except (TokenError, ValueError, OSError) as exc:
            log.error("token.invalid", error=str(exc), hint="keeping the previous token")
            return
        if fresh is not None:
            self._pipeline.replace_client(fresh)
            log.info("token.reloaded", token_source=self.config.hub.token_source())

    def _token_file_state(self) -> FileState | None:
        return file_state(token_path(self.config.hub))
