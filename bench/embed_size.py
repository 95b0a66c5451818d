"""The size of ``embed.js`` as the service serves it, against the widget's budget.

Usage (from the repository root)::

    python bench/embed_size.py [--json out.json]

Prints the raw and gzipped bytes of ``/embed.js`` (the widget with its stylesheet and all five
locales, minified as served: service/pages/assets.py), the same with English strings only (the
figure the budget is stated for), and what each other locale adds. Exits non-zero when the
served file, gzipped, is over the budget of 12 KB (12,288 bytes): it is checked with every
locale in, which is stricter than the budget asks. The other widgets' sizes are what those
projects state in their own documentation, not measured here.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import rjsmin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.pages import assets  # noqa: E402

BUDGET_GZIPPED = 12 * 1024
STATED_BY_OTHERS = {"Cusdis": 5 * 1024, "Isso": 20 * 1024, "Remark42": 73 * 1024}


def sizes(locales: tuple[str, ...]) -> tuple[int, int]:
    body = rjsmin.jsmin(assets.widget_source(locales), keep_bang_comments=False).encode()
    return len(body), len(gzip.compress(body, 9, mtime=0))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    served = assets.embed_script()
    served_raw, served_gz = len(served.body), len(served.gzipped)
    english_raw, english_gz = sizes(("en",))
    report = {
        "served_raw_bytes": served_raw,
        "served_gzip_bytes": served_gz,
        "english_only_raw_bytes": english_raw,
        "english_only_gzip_bytes": english_gz,
        "per_locale_gzip_bytes": {
            lang: sizes(("en", lang))[1] - english_gz for lang in assets.LOCALES if lang != "en"
        },
        "budget_gzip_bytes": BUDGET_GZIPPED,
    }
    print(f"embed.js as served (5 locales): {served_raw:,} B raw, {served_gz:,} B gzipped")
    print(f"embed.js, English strings only:  {english_raw:,} B raw, {english_gz:,} B gzipped")
    for lang, extra in report["per_locale_gzip_bytes"].items():  # type: ignore[attr-defined]
        print(f"  + {lang}: {extra:,} B gzipped")
    print(f"budget: {BUDGET_GZIPPED:,} B gzipped; served file at {served_gz / BUDGET_GZIPPED:.0%}")
    for name, size in STATED_BY_OTHERS.items():
        print(f"  {name} (as stated by the project): ~{size / 1024:.0f} KB gzipped")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if served_gz > BUDGET_GZIPPED:
        print(f"OVER BUDGET: {served_gz:,} > {BUDGET_GZIPPED:,} B gzipped", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
