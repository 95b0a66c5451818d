"""The WSGI entry point for gunicorn: ``service.wsgi:app``.

Also where the separate metrics port is opened: gunicorn loads this module once, in its master
(preload_app), so that process serves every worker's metrics (service/observability.py).
"""

from .app import create_app
from .observability import serve_metrics_port

app = create_app()
serve_metrics_port(app)
