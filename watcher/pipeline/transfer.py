"""Sending one file into a batch: one streamed PUT, or a multipart session above the limit.

Imports only the pipeline's hub caller and the core.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from watcher.config import Rule
from watcher.hub.client import HubClient
from watcher.pipeline.calls import HubCalls


async def send_file(
    calls: HubCalls, rule: Rule, *, batch_id: int, path: Path, name: str, size: int
) -> None:
    """Upload `path` as `name` into the batch, streamed from disk (memory does not grow with
    the file). Raises HubError subclasses, or UploadSourceError when the file is no longer the
    size it had when the drop was found complete."""
    if size <= rule.upload.single_put_max_bytes:
        await calls.call(
            lambda c: c.batches.upload_file(batch_id=batch_id, filename=name, path=path, size=size)
        )
        return
    session = await calls.call(
        lambda c: c.batches.start_multipart(batch_id=batch_id, filename=name, file_size=size)
    )
    # The server says how big each part must be (all but the last); fall back to ours.
    part_size = session.part_size or rule.upload.part_size_bytes
    parts: list[tuple[int, str]] = []
    for number, offset in enumerate(range(0, size, part_size), start=1):
        length = min(part_size, size - offset)
        part_id = await calls.call(
            _part(
                session.session_id, number, path=path, offset=offset, length=length, file_size=size
            )
        )
        parts.append((number, part_id))
    await calls.call(
        lambda c: c.batches.commit_multipart(session_id=session.session_id, parts=parts)
    )


def _part(
    session_id: str, number: int, *, path: Path, offset: int, length: int, file_size: int
) -> Callable[[HubClient], str]:
    def request(client: HubClient) -> str:
        return client.batches.upload_part(
            session_id=session_id,
            part_num=number,
            path=path,
            offset=offset,
            length=length,
            file_size=file_size,
        )

    return request
