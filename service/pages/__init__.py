"""The service's pages: the widget's script (``/embed.js``), the thread page that needs no
JavaScript (``/threads/<article_id>``) and the demo article (``/``).

Blueprints stay thin: the HTML comes from Jinja2 templates (autoescaped), the script from
static files assembled once per process (service/pages/assets.py), and every page's headers
from :func:`secure_page` (service/pages/security.py).
"""

from .security import page_policy, secure_page
from .views import bp as pages_bp

__all__ = ["page_policy", "pages_bp", "secure_page"]
