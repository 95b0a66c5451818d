"""One HTTP POST to a webhook endpoint, safely: the host is resolved here and every address it
resolves to must be public (unless WEBHOOK_ALLOW_PRIVATE), the connection goes to the address
that was checked (no second lookup a DNS rebinding could change), redirects are not followed,
the whole exchange has one timeout, and at most ``max_response_bytes`` of the answer are read.

urllib3 (what requests is built on) does the HTTP: a pool per endpoint address keeps
connections alive between deliveries.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError

from ..webhooks import is_public_address

RESOLVE_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a status (None: no answer), a Retry-After in seconds, the time
    it took, and what went wrong when there was no answer."""

    status: int | None
    retry_after: float | None
    duration_ms: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Refused(Exception):
    """The URL resolves to an address deliveries may not go to."""


class Sender:
    def __init__(self, *, timeout: float, max_response_bytes: int, allow_private: bool) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.allow_private = allow_private
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._resolved: dict[tuple[str, int], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            parts = urlsplit(url)
            scheme, host = parts.scheme, parts.hostname or ""
            port = parts.port or (443 if scheme == "https" else 80)
            address = self._address(host, port)
            pool = self._pool(scheme, host, port, address)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host_header = host if parts.port is None else f"{host}:{parts.port}"
            if ":" in host and not host.startswith("["):
                host_header = f"[{host}]" + ("" if parts.port is None else f":{parts.port}")
            response = pool.urlopen(
                "POST",
                path,
                body=body,
                headers={**headers, "Host": host_header},
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(total=self.timeout),
            )
        except Refused as error:
            return Outcome(None, None, took(), f"refused: {error}")
        except (HTTPError, OSError, ValueError) as error:
            return Outcome(None, None, took(), type(error).__name__)
        try:
            response.read(self.max_response_bytes)
            if response.read(1):  # more than the bound: not read, the connection dropped
                response.close()
            else:
                response.release_conn()
        except (HTTPError, OSError):
            response.close()
        return Outcome(response.status, _retry_after(response.headers.get("Retry-After")), took())

    def _address(self, host: str, port: int) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._resolved.get((host, port))
        if cached and cached[0] > now:
            return cached[1]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise Refused(f"{host} does not resolve ({error.strerror})") from None
        addresses = [str(info[4][0]) for info in infos]
        if not self.allow_private:
            for address in addresses:
                if not is_public_address(ipaddress.ip_address(address.split("%")[0])):
                    raise Refused(f"{host} resolves to a non-public address")
        with self._lock:
            self._resolved[(host, port)] = (now + RESOLVE_TTL_SECONDS, addresses[0])
        return addresses[0]

    def _pool(self, scheme: str, host: str, port: int, address: str) -> urllib3.HTTPConnectionPool:
        key = (scheme, host, port, address)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address,
                        port,
                        maxsize=2,
                        server_hostname=host,
                        assert_hostname=host,
                        cert_reqs="CERT_REQUIRED",
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, port, maxsize=2)
                self._pools[key] = pool
            return pool

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
