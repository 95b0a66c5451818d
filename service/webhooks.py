"""Webhook endpoints: what a moderator registers, and the secrets that sign its deliveries.

A secret is generated here (``whsec_`` + base64 of 32 random bytes, the Standard Webhooks
form), shown once when the endpoint is created or its secret rotated, and stored encrypted
(``ENCRYPTION_KEYS``). Rotating keeps the previous secret valid for a grace period
(``WEBHOOK_SECRET_GRACE_SECONDS``) and every delivery meanwhile is signed with both, so a
receiver can switch at its own pace.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .events import EVENT_TYPES

SECRET_PREFIX = "whsec_"
FORMATS = ("standard", "slack")


class UnsafeUrl(ValueError):
    """A webhook URL that names a loopback, private, link-local or metadata address (refused
    unless WEBHOOK_ALLOW_PRIVATE), or that is not an http(s) URL with a host."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Secret:
    value: str  # encrypted as stored (Cipher, purpose "webhook-secret")
    expires_ms: int | None = None  # None: the current one


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    event_types: tuple[str, ...]  # empty: every type
    enabled: bool
    format: str
    description: str
    created_at: str
    created_ms: int
    secrets: tuple[Secret, ...] = field(default=())

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)

    def valid_secrets(self, now_ms: int) -> tuple[Secret, ...]:
        return tuple(s for s in self.secrets if s.expires_ms is None or s.expires_ms > now_ms)

    def rotated(self, encrypted_new: str, now_ms: int, grace_ms: int) -> Endpoint:
        """The endpoint with a new current secret; the old ones valid ``grace_ms`` more."""
        kept = tuple(
            replace(s, expires_ms=min(s.expires_ms or now_ms + grace_ms, now_ms + grace_ms))
            for s in self.valid_secrets(now_ms)
        )
        return replace(self, secrets=(Secret(encrypted_new), *kept))

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "url": self.url,
                "event_types": list(self.event_types),
                "enabled": self.enabled,
                "format": self.format,
                "description": self.description,
                "created_at": self.created_at,
                "created_ms": self.created_ms,
                "secrets": [{"value": s.value, "expires_ms": s.expires_ms} for s in self.secrets],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> Endpoint:
        d: dict[str, Any] = json.loads(raw)
        return cls(
            id=d["id"],
            url=d["url"],
            event_types=tuple(d["event_types"]),
            enabled=d["enabled"],
            format=d["format"],
            description=d.get("description", ""),
            created_at=d["created_at"],
            created_ms=d["created_ms"],
            secrets=tuple(Secret(s["value"], s["expires_ms"]) for s in d["secrets"]),
        )


def is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Only globally routable unicast addresses: loopback, private, link-local (cloud
    metadata at 169.254.169.254 and fd00:ec2::254), shared, reserved, multicast and the
    IPv4-mapped forms of all of those are not."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


# The URLs the contract accepts (openapi.yaml, WebhookUrl: the same pattern): http(s), a
# host name with a letters-only top-level domain, a port from 1 to 65535, a path and a query
# of URL characters. With WEBHOOK_ALLOW_PRIVATE, also localhost and IP literals.
_PORT = (
    r"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
    r"|6553[0-5]))?"
)
_REST = r"(?:/[A-Za-z0-9._~%!$&'()*+,;=:@-]*)*(?:\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?"
PUBLIC_URL_PATTERN = (
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
    + _PORT
    + _REST
    + "$"
)
_PUBLIC_URL = re.compile(PUBLIC_URL_PATTERN)
_LOCAL_URL = re.compile(
    r"^https?://(?:localhost|[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]+\])"
    + _PORT
    + _REST
    + "$"
)


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse what can be refused without DNS: a URL outside the contract's form, or (unless
    ``allow_private``) one whose host is localhost or an IP literal that is not public.
    Names are checked again on every delivery, after resolving them
    (service/delivery/sender.py)."""
    if _PUBLIC_URL.fullmatch(url) is None:
        if not (allow_private and _LOCAL_URL.fullmatch(url)):
            raise UnsafeUrl(
                "an http(s) URL with a public host name, an optional port, path and query "
                "(localhost and IP addresses only with WEBHOOK_ALLOW_PRIVATE=true)"
            )
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:  # an IP literal urllib cannot parse
        raise UnsafeUrl("not a valid address or port") from None
    host = (parts.hostname or "").rstrip(".").lower()
    if not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise UnsafeUrl(f"{host} is a local name (set WEBHOOK_ALLOW_PRIVATE=true to allow it)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not allow_private and not is_public_address(address):
        raise UnsafeUrl(
            f"{host} is not a public address (set WEBHOOK_ALLOW_PRIVATE=true to allow it)"
        )


def known_event_types() -> tuple[str, ...]:
    return EVENT_TYPES
