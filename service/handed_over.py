"""What the submission fast path hands Flask once the domain has run (service/api/
fast_submissions.py), in the request's environ, for the hooks and the view to carry on from it:
the request id and clock stand (service/observability.py), the unconfirmed writes carry over
(service/errors.py), and the view (service/api/public.py) uses each step's outcome instead of
taking the step again, raising what it raised where it raised it. A module of its own so that
each can import it without the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HANDED_OVER = "service.handed_over"
# Set by the view when it answers an accepted submission with its JSON document: the answers
# whose headers the fast path may keep.
ACCEPTED_JSON = "service.accepted_json"


@dataclass
class HandedOver:
    """Each step the fast path took, with what it gave: its result, or the exception it raised
    (None: not taken)."""

    # The Idempotency-Key's attempt or replay (service/idempotency.py), with a key.
    begun: Any = None
    # The submission's Accepted.
    submitted: Any = None
    # The Idempotency-Key's kept answer: whether it was kept, or the exception keeping it
    # raised.
    finished: bool = False
    finish_error: Exception | None = None
    unconfirmed: list[str] = field(default_factory=list)
