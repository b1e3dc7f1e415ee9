"""Root passes: a fresh listing of a rule's watch folder, reconciled with what the rule knows.

Finds new drops, prunes vanished ones, spots changes a poller would otherwise miss, and feeds
the files-mode group. Imports fs, config and model; never the pipeline, ledger or hub.
"""

from __future__ import annotations

from collections.abc import Mapping

from watcher.detect.batches import FileBatches
from watcher.detect.folders import FolderDrops
from watcher.detect.state import IsKnown, RuleState, log
from watcher.fs.scan import RootListing


class RootView:
    """What a rule saw at its watch folder's top level last time, and the pass that updates it."""

    def __init__(
        self, state: RuleState, folders: FolderDrops, batches: FileBatches, *, is_known: IsKnown
    ) -> None:
        self._state = state
        self._folders = folders
        self._batches = batches
        self._is_known = is_known
        self.top_dirs: dict[str, int] = {}
        self.top_files: set[str] = set()
        self._quiet: set[str] = set()  # "log once" memory of names that are no drops

    async def reconcile(self, listing: RootListing, *, polling: bool, attach: bool) -> int:
        """Poke new, vanished and (when polling) changed drops; returns how many were new."""
        state = self._state
        dirs = listing.dirs
        for gone in [n for n in state.done if n not in dirs]:
            del state.done[gone]  # moved away or deleted after its run: a same-named folder is new
        self._folders.prune(dirs)
        if state.files_mode:
            candidates = await self._batch_candidates(listing, attach=attach)
        else:
            candidates = self._folder_candidates(listing, polling=polling)
        self._log_once(list(listing.skipped), "watch.entry_skipped", "symlink or special file")
        new = self._poke_candidates(candidates, dirs, polling=polling)
        self.top_dirs = dict(dirs)
        self.top_files = set(listing.files)
        if state.files_mode:
            await self._batches.update(listing)
        return new

    async def _batch_candidates(self, listing: RootListing, *, attach: bool) -> list[str]:
        """Files mode: loose files become batches, and every folder is a drop, ours or not, at
        startup and at runtime alike (a folder dropped whole is never silently skipped, and a
        batch a crash left unsubmitted is found again; the ledger knows what was submitted)."""
        recovered: list[str] = []
        if attach:
            recovered = await self._batches.recover_orphans(listing)
        # Recovered batches were renamed after the listing was taken, and possibly before
        # the observer watched the root: take them from here, not from an event.
        return [*listing.dirs, *recovered]

    def _folder_candidates(self, listing: RootListing, *, polling: bool) -> list[str]:
        """Folder mode: every folder is a drop; a ready marker beside one pokes it."""
        marker = self._state.marker
        dirs = listing.dirs
        markers = {
            n[: -len(marker)]
            for n in listing.files
            if marker and n.endswith(marker) and n[: -len(marker)] in dirs
        }
        loose = [
            n
            for n in listing.files
            if not (marker and n.endswith(marker) and n[: -len(marker)] in dirs)
        ]
        self._log_once(loose, "watch.file_ignored", "folder mode: loose files are no drops")
        for drop in markers:
            marker_file = f"{drop}{marker}"
            if drop in self._folders.pending or (polling and marker_file not in self.top_files):
                self._folders.poke(drop, delay=0.0)
        return list(dirs)

    def _poke_candidates(
        self, candidates: list[str], dirs: Mapping[str, int], *, polling: bool
    ) -> int:
        """Poke drops not seen before (or, when polling, changed since the last listing)."""
        state = self._state
        pending = self._folders.pending
        new = 0
        for name in candidates:
            if name in pending:
                continue
            if name in state.done:
                if polling and name in self.top_dirs and self.top_dirs[name] != dirs[name]:
                    self._folders.poke(name, delay=0.0)  # entries added or removed inside it
                continue
            if self._is_known(state.rule.name, name):
                state.done[name] = None
                continue
            new += 1
            self._folders.poke(name, delay=0.0)
        return new

    def _log_once(self, names: list[str], event: str, why: str) -> None:
        for name in names:
            key = f"{event}\0{name}"
            if key not in self._quiet:
                self._quiet.add(key)
                log.debug(event, rule=self._state.rule.name, name=name, reason=why)
        if len(self._quiet) > 10_000:
            self._quiet.clear()  # bounded memory; at worst a debug line repeats
