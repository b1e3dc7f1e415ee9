"""The loopback AI Hub simulator (`aihub-watcher hub-sim`): the OpenAPI spec, implemented alone.

Imports no watcher module outside sim/ (least of all hub/), so a client bug can't be mirrored.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from watcher.sim.options import SimOptions, add_arguments, options_from_args

if TYPE_CHECKING:
    from watcher.sim.recorder import RecordedRequest
    from watcher.sim.server import HubSim, run_forever, serve_in_thread

__all__ = [
    "HubSim",
    "RecordedRequest",
    "SimOptions",
    "add_arguments",
    "options_from_args",
    "run_forever",
    "serve_in_thread",
]

# The server (asyncio, the HTTP framing) loads on first use, so the CLI can add the hub-sim flags
# from `options` without loading the simulator for commands such as `check` and `status`.
_LAZY: Final = {
    "HubSim": "watcher.sim.server",
    "serve_in_thread": "watcher.sim.server",
    "run_forever": "watcher.sim.server",
    "RecordedRequest": "watcher.sim.recorder",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
