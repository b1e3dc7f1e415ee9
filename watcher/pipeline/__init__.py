"""The service that turns ready drops into AI Hub runs and follows each run to its end.

Imports the hub adapter, the ledger and the core; never detect, the app or the CLI.
"""

from watcher.pipeline.pipeline import Pipeline

__all__ = ["Pipeline"]
