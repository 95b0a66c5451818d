"""Building JSON responses the same way everywhere."""

from __future__ import annotations

import json
from typing import Any

from flask import Response


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status=status,
        mimetype="application/json",
    )
