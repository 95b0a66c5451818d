"""Import speed and memory (`make bench`): a generated WordPress export (WXR) of 100,000
comments into the embedded Redis (or REDIS_URL), measured in one run against baselines of the
same run.

1. Import rate (comments/s) of the whole file, through ``comments-service import``'s own code
   (a reader process parsing and checking fields, then ids, parents, rendering and the
   store's pipelined insert script); target ≥ 5,000/s. CPU per comment of the importing
   process, of its reader process and of Redis (``INFO cpu``): what a shared machine's load
   changes least, and the rate they allow on two idle cores.
2. Baselines in the same run: the same import in one process (no reader process), the same
   comments stored one per round trip through the live insert (``insert_submission``, as
   devtools' insert_as_is does), and the reader alone (parsing, no validation, no Redis).
3. Peak memory (max RSS) of the importing process and of its reader for the full file and for
   one a tenth its size: streaming keeps the ratio near 1.

Each import runs in a process of its own (so its max RSS is its own) on an empty store.

    python bench/import_bench.py [--comments 100000] [--json out]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.redis_for_bench import bench_redis  # noqa: E402
from service.crypto import Cipher, KeyRing  # noqa: E402
from service.hashing import Hasher  # noqa: E402
from service.store import CommentStore, Keys, make_redis  # noqa: E402

SECRET = b"import-bench-secret-0123456789abcdef"
KEYRING = KeyRing.generate_entry("bench")
PER_POST = 50
TEXT = (
    "The council said the budget for the new <em>library</em> would be reviewed next week, "
    "while residents asked whether parking near the station could change soon &amp; given "
    "the long delays many of them reported on the morning buses into town."
)
HEADER = """<?xml version="1.0" encoding="UTF-8" ?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel><title>Bench</title><link>https://bench.example.org</link>
<wp:wxr_version>1.2</wp:wxr_version><wp:base_site_url>https://bench.example.org</wp:base_site_url>
"""
STATUSES = ["1"] * 16 + ["0", "0", "spam", "trash"]


def generate(path: Path, comments: int) -> None:
    """Posts of 50 comments; a quarter of them replies (one in ten of those to a comment
    that comes later in the file); statuses 80% approved, 10% pending, 5% spam, 5% trash."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        cid = 0
        for post in range(-(-comments // PER_POST)):
            out.write(
                f"<item><title>Post {post}</title>"
                f"<link>https://bench.example.org/2024/01/post-{post}/</link>"
                f"<wp:post_id>{post + 1}</wp:post_id><wp:post_type>post</wp:post_type>\n"
            )
            first = cid + 1
            for i in range(min(PER_POST, comments - cid)):
                cid += 1
                parent = 0
                if i % 4 == 3:
                    parent = cid + 1 if i % 40 == 3 and i + 1 < PER_POST else first + i // 2
                    if parent == cid:
                        parent = 0
                when = 1_600_000_000 + cid * 37
                date = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))
                out.write(
                    "<wp:comment>"
                    f"<wp:comment_id>{cid}</wp:comment_id>"
                    f"<wp:comment_author><![CDATA[Reader {cid % 5000}]]></wp:comment_author>"
                    "<wp:comment_author_email>"
                    f"reader{cid % 5000}@example.com</wp:comment_author_email>"
                    "<wp:comment_author_url></wp:comment_author_url>"
                    f"<wp:comment_author_IP>192.0.2.{cid % 250}</wp:comment_author_IP>"
                    f"<wp:comment_date>{date}</wp:comment_date>"
                    f"<wp:comment_date_gmt>{date}</wp:comment_date_gmt>"
                    f"<wp:comment_content><![CDATA[{TEXT} #{cid}]]></wp:comment_content>"
                    f"<wp:comment_approved>{STATUSES[cid % 20]}</wp:comment_approved>"
                    "<wp:comment_type></wp:comment_type>"
                    f"<wp:comment_parent>{parent}</wp:comment_parent>"
                    "</wp:comment>\n"
                )
            out.write("</item>\n")
        out.write("</channel></rss>\n")


def open_store(url: str) -> CommentStore:
    return CommentStore(make_redis(url), Keys("bench"), Cipher(KeyRing.parse(KEYRING)))


def child(mode: str, url: str, path: Path) -> dict[str, Any]:
    """One measurement in this process: ``import`` the file (``import-one``: without a reader
    process), read it only (``parse``), or store the same comments one round trip each
    (``live``)."""
    import io

    from service.importers import commands, wordpress
    from service.importers.run import ArticleRule
    from service.importers.source import SourceComment

    store = open_store(url)
    store.redis.flushdb()
    redis_cpu = _redis_cpu(store)
    # This process's start (imports) is not the import's: CPU from here on.
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    count = 0
    if mode in ("import", "import-one"):
        report = commands.run_import(
            store,
            Hasher(SECRET),
            "wordpress",
            path,
            rule=ArticleRule(),
            out=io.StringIO(),
            reader_process=None if mode == "import" else False,
        )
        count = report.comments
        assert not report.skipped, report.lines()
    elif mode == "parse":
        with path.open("rb") as handle:
            count = sum(1 for item in wordpress.read(handle) if isinstance(item, SourceComment))
    else:
        count = live_inserts(store, path)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    reader = resource.getrusage(resource.RUSAGE_CHILDREN)  # the reader process, if any
    return {
        "mode": mode,
        "comments": count,
        "seconds": seconds,
        "rate": count / seconds,
        # CPU time is what the load of a shared machine does not change much: the rate the
        # import would reach with a core each for it and Redis is comments / the larger one.
        "cpu_seconds": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime,
        "redis_cpu_seconds": _redis_cpu(store) - redis_cpu,
        "reader_cpu_seconds": reader.ru_utime + reader.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "reader_max_rss_mb": reader.ru_maxrss / 1024,
    }


def _rates(label: str, imp: dict[str, Any], one: dict[str, Any]) -> str:
    """The import's rate and CPU per comment, beside the same import in one process."""
    n = imp["comments"]
    parts = (imp["cpu_seconds"], imp["reader_cpu_seconds"], imp["redis_cpu_seconds"])
    # Two idle cores: no process faster than its own CPU, all of them no faster than half
    # their sum.
    bound = n / max(*parts, sum(parts) / 2)
    one_bound = n / max(one["cpu_seconds"], one["redis_cpu_seconds"])
    load = os.getloadavg()[0]
    return (
        f"  {label:<15} {imp['rate']:>9,.0f} comments/s  ({imp['seconds']:.1f} s wall, "
        f"load average {load:.1f})  target >= 5,000/s: "
        f"{'met' if imp['rate'] >= 5000 else 'MISSED'}\n"
        f"    CPU           {parts[0] * 1e6 / n:>9,.0f} us/comment importer + "
        f"{parts[1] * 1e6 / n:,.0f} reader process + {parts[2] * 1e6 / n:,.0f} Redis: "
        f"{bound:,.0f} comments/s on two idle cores\n"
        f"    one process   {one['rate']:>9,.0f} comments/s  "
        f"({one['cpu_seconds'] * 1e6 / n:,.0f} us/comment importer + "
        f"{one['redis_cpu_seconds'] * 1e6 / n:,.0f} Redis: {one_bound:,.0f}/s bound)"
    )


def _redis_cpu(store: CommentStore) -> float:
    info = store.redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def live_inserts(store: CommentStore, path: Path, limit: int = 10_000) -> int:
    """The first ``limit`` comments stored as a live submission stores one: its own insert
    call, one round trip each (devtools.comments.insert_as_is), parents ignored."""
    from devtools.comments import insert_as_is
    from service.clock import iso_from_ms
    from service.ids import new_id
    from service.importers import wordpress
    from service.importers.run import slug
    from service.importers.source import SourceComment
    from service.models import StoredComment

    hasher = Hasher(SECRET)
    count = 0
    with path.open("rb") as handle:
        for item in wordpress.read(handle):
            if not isinstance(item, SourceComment):
                continue
            at = iso_from_ms(item.created_ms)
            insert_as_is(
                store,
                StoredComment(
                    id=new_id(item.created_ms),
                    article_id=slug(item.thread.url) or "x",
                    name=item.name,
                    email=item.email,
                    comment=item.text,
                    status=item.status,
                    created_at=at,
                    updated_at=at,
                    email_hash=hasher.email(item.email),
                ),
            )
            count += 1
            if count >= limit:
                break
    return count


def measure(mode: str, url: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, url, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, url, file = args.child
        print(json.dumps(child(mode, url, Path(file))))
        return 0
    with tempfile.TemporaryDirectory() as tmp, bench_redis() as (url, embedded):
        big, small = Path(tmp) / "big.xml", Path(tmp) / "small.xml"
        generate(big, args.comments)
        generate(small, args.comments // 10)
        results = {
            "import": measure("import", url, big),
            "import_one": measure("import-one", url, big),
            "import_tenth": measure("import", url, small),
            "import_tenth_one": measure("import-one", url, small),
            "parse": measure("parse", url, big),
            "live": measure("live", url, big),
        }
        open_store(url).redis.flushdb()
        mb = big.stat().st_size / 1e6
    imp, one, parse, live = (results[k] for k in ("import", "import_one", "parse", "live"))
    print(
        f"import bench: {args.comments:,} comments, {mb:.0f} MB WXR, "
        f"{'embedded Redis' if embedded else 'REDIS_URL'}, nproc {os.cpu_count()}"
    )
    for label, key, size in (
        ("import", "import", args.comments),
        ("import", "import_tenth", args.comments // 10),
    ):
        print(_rates(f"{label} {size:,}", results[key], results[key + "_one"]))
    print(
        f"  live insert     {live['rate']:>9,.0f} comments/s  (one round trip each, "
        f"{live['comments']:,} comments)  import/live = {imp['rate'] / live['rate']:.1f}x"
    )
    print(
        f"  reader alone    {parse['rate']:>9,.0f} comments/s  "
        f"({parse['cpu_seconds'] * 1e6 / parse['comments']:,.0f} us/comment CPU)"
    )
    tenth = results["import_tenth"]
    print(
        f"  peak memory     {imp['max_rss_mb']:.0f} MB importer + "
        f"{imp['reader_max_rss_mb']:.0f} MB reader for {args.comments:,}, "
        f"{tenth['max_rss_mb']:.0f} + {tenth['reader_max_rss_mb']:.0f} MB for "
        f"{args.comments // 10:,} (ratio {imp['max_rss_mb'] / tenth['max_rss_mb']:.2f}; "
        "flat is ~1)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
