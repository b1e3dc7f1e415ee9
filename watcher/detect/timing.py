"""The detector's clocks: debounce, root checks, scan batching and back-offs, in one place.

Read as `timing.NAME` where used (never imported by value), so a test can shorten one for every
part at once. Imports nothing.
"""

from __future__ import annotations

# How often an attached watch folder is checked for being deleted, replaced or unmounted, and
# how often a missing one is looked for. A stat every 2 s costs nothing measurable.
ROOT_CHECK_S = 2.0
# After an event, wait this long for the burst to end before scanning (never longer than
# settle_seconds in total, so a steady trickle of events cannot postpone scans for ever). It
# does not delay readiness: the settle window counts from the event, not from the scan.
DEBOUNCE_S = 0.05
# Due drops are scanned by one drainer task per rule, up to this many per worker-thread hop:
# a hop costs milliseconds on a busy loop, a small drop's scan well under one.
SCAN_BATCH = 64
# A stable but incomplete drop (empty, in progress, unreadable) is re-checked at most this far
# apart; events poke it sooner.
MAX_BLOCKED_RECHECK_S = 60.0
# After an unexpected error in a rule's task, pause this long before carrying on.
ERROR_DELAY_S = 1.0
