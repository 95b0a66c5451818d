"""How commands are packed into RESP for the wire: hiredis, given the arguments as they are.

redis-py's own hiredis serializer first copies every argument through a generator to turn
``bytearray`` and ``memoryview`` into ``bytes``; the store never sends either, and for an
insert's 75 arguments that copy cost more than hiredis's packing itself (20-35 against 8-15 us
a command, measured with timeit). :class:`DirectPacker` hands the tuple to hiredis as it comes
and only falls back to redis-py's serializer for what hiredis refuses, so every command's bytes
are the same (tests/test_command_packing.py).
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.connection import HiredisRespSerializer

_FALLBACK = HiredisRespSerializer()


class DirectPacker:
    """A command packer for redis-py connections (their ``command_packer``)."""

    def pack(self, *args: Any) -> list[bytes]:
        first = args[0]
        # A command name of several words ("CLIENT TRACKING", as redis-py sends some) goes as
        # separate arguments, as redis-py's serializer sends it.
        if isinstance(first, str) and " " in first:
            args = (*first.split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # bytearray, memoryview (or what redis-py refuses with DataError)
            return list(_FALLBACK.pack(*args))


PACKER = DirectPacker()
