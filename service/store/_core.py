"""What every room of the store shares: the client, the key schema, the cipher, the caches and
the registered scripts. Only the store's rooms use it; callers use :class:`CommentStore`."""

from __future__ import annotations

from redis.cluster import RedisCluster
from redis.exceptions import ClusterDownError

from ..clock import iso_from_ms
from ..crypto import Cipher
from ..events import EventRetention
from ..tracked_cache import TrackedCache
from . import scripts
from .client import RedisClient
from .keys import Keys


class StoreCore:
    def __init__(
        self,
        redis: RedisClient,
        keys: Keys,
        cipher: Cipher,
        cache: TrackedCache | None = None,
        *,
        moderation_cache: TrackedCache | None = None,
        event_retention: EventRetention | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.cipher = cipher
        # Without caches every read goes to Redis (tests, the CLI). ``cache`` holds what
        # public reads, submissions and token checks use; ``moderation_cache`` the moderator
        # listings, whose keys every submission changes (see Keys.*_tracked_prefixes).
        self.cache = cache
        self.moderation_cache = moderation_cache
        self._anonymise = redis.register_script(scripts.ANONYMISE_COMMENT)
        self._insert = redis.register_script(scripts.INSERT_COMMENT)
        self._transition = redis.register_script(scripts.TRANSITION_COMMENT)
        self._delete = redis.register_script(scripts.DELETE_COMMENT)
        self._public_page = redis.register_script(scripts.PUBLIC_PAGE)
        self._forget_author = redis.register_script(scripts.FORGET_AUTHOR)
        self._read_comments = redis.register_script(scripts.READ_COMMENTS)
        self._latest_public = redis.register_script(scripts.LATEST_PUBLIC)
        self.event_retention = event_retention or EventRetention()
        self._save_policy = redis.register_script(scripts.SAVE_POLICY)
        self._set_article_closed = redis.register_script(scripts.SET_ARTICLE_CLOSED)
        self._save_moderator = redis.register_script(scripts.SAVE_MODERATOR)
        self._hold_lease = redis.register_script(scripts.HOLD_LEASE)
        self._claim_script = redis.register_script(scripts.CLAIM_COMMENT)
        self._release_claim = redis.register_script(scripts.RELEASE_CLAIM)
        self._begin_idempotent = redis.register_script(scripts.BEGIN_IDEMPOTENT)
        self._report = redis.register_script(scripts.REPORT_COMMENT)
        self._finish_review = redis.register_script(scripts.FINISH_REVIEW)
        self._edit = redis.register_script(scripts.EDIT_COMMENT)

    def ping(self) -> bool:
        """Ready to serve: the server answers; on a cluster, every primary answers and each
        sees the cluster's state as ok (raises otherwise: the readiness probe's 503)."""
        if not isinstance(self.redis, RedisCluster):
            return bool(self.redis.ping())
        for node in self.redis.get_primaries():  # type: ignore[no-untyped-call]
            server = self.redis.get_redis_connection(node)
            server.ping()
            info = str(server.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
            fields = dict(line.split(":", 1) for line in info.split() if ":" in line)
            state = fields.get("cluster_state")
            if state != "ok":
                raise ClusterDownError(f"{node.name} sees the cluster state as {state}")
        return True

    def _changed(self, *keys: str) -> None:
        """Our own writes: forget what they touched now, not when Redis's message arrives."""
        for cache in (self.cache, self.moderation_cache):
            if cache:
                cache.invalidate(list(keys))

    def _site_event_args(self, actor: str, now_ms: int) -> list[str | int]:
        """at, actor, MAXLEN, MINID: how the site-wide scripts take their event."""
        maxlen, minid, _ = self.event_retention.script_args(now_ms)
        return [iso_from_ms(now_ms), actor, maxlen, minid]

    def try_lock(self, name: str, seconds: int) -> bool:
        return bool(self.redis.set(self.keys.lock(name), "1", nx=True, ex=seconds))
