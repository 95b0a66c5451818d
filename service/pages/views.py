"""Routes of the pages blueprint (filled in by the widget, the thread page and the demo)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pages", __name__, template_folder="templates", static_folder=None)
