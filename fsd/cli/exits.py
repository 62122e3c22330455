"""The `fsd` command's exit codes (documented in the README; stable for scripts and CI gates)."""
from __future__ import annotations

OK = 0              # success
ERROR = 1           # the daemon or fsd refused or failed (the message says why)
USAGE = 2           # the command line itself is wrong (unknown flag, malformed value)
ROWS_REJECTED = 3   # a publish or ingest finished, but some rows were rejected (listed)
CHECK_FAILED = 4    # a check ran and failed: consistency under the threshold, nothing compared, a group STALE/BLOCKED
UNAVAILABLE = 5     # no daemon answered at the target (or it is shutting down)
INTERRUPTED = 130   # Ctrl-C


class UsageError(Exception):
    """A malformed command-line value; exits USAGE."""
