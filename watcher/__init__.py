"""aihub-watcher: turn completed drops in watched folders into Instabase AI Hub runs."""

__version__ = "0.1.0"
