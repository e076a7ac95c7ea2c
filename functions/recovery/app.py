"""Lambda entry point of the scheduled crash recovery: a thin adapter to ``repohost.recovery``.

A call killed between its directory step and its commit (a Lambda timeout, a
lost host) leaves an intent note under the repository root and a directory the
database does not know. ``python -m repohost.local`` settles those at start; on
AWS nothing restarts, so ``template.yaml`` runs this function on a schedule.

Other invocations may be serving calls meanwhile, so only notes (and ``.tmp/``,
``.trash/`` entries) older than ``repohost.recovery.STALE_SECONDS`` are touched:
no live call is that old. An exception propagates, so the invocation counts as
an error in CloudWatch and the next run tries again.
"""

from __future__ import annotations

import logging
from typing import Any

from repohost.coldstart import loading

with loading():
    from repohost.logs import configure_logging
    from repohost.recovery import recover

configure_logging()
log = logging.getLogger("repohost.recovery")


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Settle old intent notes and purge old leftovers; the counts are the result."""
    outcome = recover()
    counts = {"settled": outcome.settled, "undone": outcome.undone, "purged": outcome.purged}
    log.info(
        "recovery run: %d notes settled, %d undone, %d leftovers purged",
        counts["settled"],
        counts["undone"],
        counts["purged"],
    )
    return counts
