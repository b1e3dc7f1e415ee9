"""The application: the daemon's lifecycle, config reload and the demo.

Imports everything below it (pipeline, detect, adapters, core); nothing imports it but the CLI.
"""
