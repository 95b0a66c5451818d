"""The environ key of a submission the fast path began and handed to Flask
(service/api/fast_submissions.py), read by the hooks that must carry on from it: the request
id and clock (service/observability.py), the unconfirmed writes (service/errors.py) and the
view (service/api/public.py). A module of its own so that each can import it without the
others."""

HANDED_OVER = "service.handed_over"  # (its outcome: Accepted or the exception, unconfirmed writes)
# Set by the view when it answers an accepted submission with its JSON document: the answers
# whose headers the fast path may keep.
ACCEPTED_JSON = "service.accepted_json"
