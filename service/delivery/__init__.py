"""The way out: the delivery worker (``comments-service deliver``) posts the event log to
webhook endpoints (worker.py, sender.py) and mails moderators about held comments
(notify.py)."""
