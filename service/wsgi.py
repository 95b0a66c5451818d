"""The entry points: ``service.wsgi:app`` (WSGI) for gunicorn, which writes its own access log
(service/gunicorn_logging.py); ``service.wsgi:rsgi_app`` for granian's RSGI interface: the
same app behind the access log (service/access_log.py) and the bridge that reads each request
whole before a thread runs it (service/rsgi_bridge.py), which answers the public reads the
worker holds in memory on its event loop (service/replayed_reads.py).

Also where gunicorn's master opens the separate metrics port: it loads this module once
(preload_app), so that process serves every worker's metrics (service/observability.py).
granian's workers each import this module, so under granian the launcher (service/serve.py)
serves that port instead.
"""

import sys

from .access_log import AccessLog
from .api.context import EXTENSION_KEY
from .app import SECURITY_HEADERS, create_app
from .logs import install_redaction
from .observability import serve_metrics_port
from .replayed_reads import ReplayedReads
from .rsgi_bridge import RSGIBridge

app = create_app()
_config = app.extensions[EXTENSION_KEY].config
if "gunicorn" in sys.modules:  # imported by gunicorn's master (preload), before it forks
    serve_metrics_port(app)
# gunicorn's logger sets the level in its workers; under granian this module does.
install_redaction(_config.log_level, _config.log_format)
access_logged = AccessLog(app, app.extensions[EXTENSION_KEY].hasher, _config.log_format)
replayed_reads = (
    ReplayedReads(access_logged, trusted_proxies=_config.trusted_proxies)
    if _config.replay_reads
    else None
)
rsgi_app = RSGIBridge(
    access_logged,
    threads=_config.threads,
    max_body_bytes=_config.max_body_bytes,
    read_timeout=_config.request_read_timeout,
    extra_headers=SECURITY_HEADERS,
    replayer=replayed_reads,
)
rsgi_app.on_shutdown.append(access_logged.flush)
