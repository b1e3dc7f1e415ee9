"""Run results (getRunResults): the query of one page, the check of each page, and the merge of
every page into one object.

Pure: no I/O. Imports only `watcher.hub.errors` and `watcher.hub.wire`; never config, ledger or
pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from watcher.hub.errors import HubResponseError
from watcher.hub.wire import Params, json_type

__all__ = ["RESULT_FLAGS", "ResultOptions", "ResultPages", "results_params"]

# The spec's boolean query flags of getRunResults, all false by default.
RESULT_FLAGS: Final = (
    "include_review_results",
    "include_confidence_scores",
    "include_validation_results",
    "include_source_info",
)
# A server that ignores file_offset and always says has_more would otherwise be asked forever.
MAX_PAGES: Final = 10_000

ResultOptions = Mapping[str, str | bool | int]


def results_params(options: ResultOptions | None, file_offset: int) -> Params:
    """The query of one page: `options` in their order (booleans as the spec's `true`/`false`,
    names passed through, so a flag newer than this client works), then `file_offset`.

    Raises:
        ValueError: an empty name, `file_offset` among the options (the client pages itself), or
            a value that is not a str, bool or int.
    """
    params: Params = []
    for name, value in (options or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"result option names must be non-empty strings, got {name!r}")
        if name == "file_offset":
            raise ValueError("file_offset is not an option: every page is fetched")
        if isinstance(value, bool):
            params.append((name, "true" if value else "false"))
        elif isinstance(value, int | str):
            params.append((name, str(value)))
        else:
            raise ValueError(f"result option {name}: {type(value).__name__} is not str/bool/int")
    params.append(("file_offset", file_offset))
    return params


class ResultPages:
    """The pages of one run's results, checked as they come; `merged()` is the whole.

    `add` returns the next page's file_offset (this one's plus its file count), or None after
    the last page.
    """

    def __init__(self, *, method: str, path: str, max_pages: int = MAX_PAGES) -> None:
        if max_pages < 1:
            raise ValueError("max_pages must be positive")
        self._method, self._path, self._max_pages = method, path, max_pages
        self._first: Mapping[str, Any] | None = None
        self._files: list[Any] = []
        self._pages = 0
        self._done = False

    def _bad(self, why: str) -> HubResponseError:
        return HubResponseError(
            f"results page {self._pages} (file_offset {len(self._files)}): {why}",
            method=self._method,
            path=self._path,
        )

    def add(self, page: object) -> int | None:
        """Check one decoded page and keep its files; the next file_offset, or None when done.

        Raises:
            RuntimeError: a page after the last one (a bug).
            HubResponseError: not an object, `files` not a list of objects, `has_more` not a
                boolean, has_more with no files, or more than max_pages pages.
        """
        if self._done:
            raise RuntimeError("a results page after the last one")
        self._pages += 1
        if not isinstance(page, Mapping):
            raise self._bad(f"expected a JSON object, got {json_type(page)}")
        files = page.get("files")
        if files is None:
            files = []
        if not isinstance(files, list):
            raise self._bad(f"'files' must be a list, got {json_type(files)}")
        for i, item in enumerate(files):
            if not isinstance(item, Mapping):
                raise self._bad(f"files[{i}] must be an object, got {json_type(item)}")
        has_more = page.get("has_more")
        if has_more is None:
            has_more = False
        if not isinstance(has_more, bool):
            raise self._bad(f"'has_more' must be a boolean, got {json_type(has_more)}")
        if self._first is None:
            self._first = page
        self._files.extend(files)
        if not has_more:
            self._done = True
            return None
        if not files:
            raise self._bad("has_more is true but the page has no files")
        if self._pages >= self._max_pages:
            raise self._bad(f"still has_more after {self._max_pages} pages")
        return len(self._files)

    def merged(self) -> dict[str, Any]:
        """The first page's fields, with every page's files in order and has_more false.

        Raises:
            RuntimeError: called before the last page was added (a bug).
        """
        if not self._done or self._first is None:
            raise RuntimeError("results merged before the last page")
        return {**self._first, "files": list(self._files), "has_more": False}
