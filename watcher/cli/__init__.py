"""Command line: `aihub-watcher COMMAND`. One module per group of commands; `main` is the entry."""

from watcher.cli.main import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, build_parser, exit_code_for, main

__all__ = ["EXIT_FAILURE", "EXIT_INVALID", "EXIT_OK", "build_parser", "exit_code_for", "main"]
