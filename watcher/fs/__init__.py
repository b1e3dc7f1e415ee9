"""The filesystem adapter: watchdog observers, hints, scans, batch folders, settle and grouping.

The only watchdog user; imports only the core (config, model, errors), never detect or a service.
Empty on purpose: import the submodule you need, so the pure ones never load watchdog.
"""
