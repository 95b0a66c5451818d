"""Side-by-side timing of better_profanity 0.7.0 and service.moderation.profanity.

Usage (from the repository root)::

    python bench/profanity_bench.py [--json out.json]

Times ``contains_profanity`` of the real package and of ``ProfanityMatcher`` on a ~500-character
and a ~5,000-character comment (deterministic generated prose with occasional profanity and
leetspeak), best of several repetitions with ``time.perf_counter``. Exits non-zero if a speed-up
ratio is below 200 or if the two disagree on the benchmark texts. It reports ratios; absolute
timings depend on the machine and are never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from better_profanity import Profanity  # noqa: E402

from service.moderation.profanity import ProfanityMatcher  # noqa: E402

MIN_RATIO = 200.0
SIZES = (500, 5000)

_WORDS = (
    "the of and to a in is you that it he was for on are as with his they I at be this have "
    "from or one had by word but not what all were we when your can said there use an each "
    "which she do how their if will up other about out many then them these so some her would "
    "make like him into time has look two more write go see number no way could people my than "
    "first water been call who oil its now find long down day did get come made may part "
    "comment thread moderator article honestly really think great point agree disagree post "
    "reply thanks source link update weekend coffee meeting project deadline weather game"
).split()
_PROFANE = (
    "shit",
    "sh1t",
    "fuck",
    "f*ck",
    "FUCK",
    "bitch",
    "b1tch",
    "a$$",
    "@ss",
    "bull shit",
    "damn",
    "crap",
    "wtf",
    "motherfucker",
)


def comment(size: int, seed: int) -> str:
    """Deterministic prose of exactly ``size`` characters, ~3 % profane words."""
    rng = random.Random(seed)
    sentences: list[str] = []
    length = 0
    while length < size:
        words = [
            rng.choice(_PROFANE) if rng.random() < 0.03 else rng.choice(_WORDS)
            for _ in range(rng.randint(5, 16))
        ]
        words[0] = words[0].capitalize()
        sentence = " ".join(words) + rng.choice((".", ".", ".", "!", "?", "..."))
        if rng.random() < 0.15:
            sentence += "\n"
        sentences.append(sentence)
        length += len(sentence) + 1
    return " ".join(sentences)[:size]


def best_of(func: Callable[[str], object], text: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        func(text)
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    reference = Profanity()  # private instance, default word list

    # Memory owned by one matcher: `re`'s compile cache is purged so it is not counted twice.
    re.purge()
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    traced = ProfanityMatcher()
    re.purge()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    started = time.perf_counter()
    matcher = ProfanityMatcher()
    build_ms = (time.perf_counter() - started) * 1e3

    rows = []
    ok = True
    for size in SIZES:
        text = comment(size, seed=size)
        same = reference.censor(text) == matcher.censor(text) and (
            reference.contains_profanity(text) == matcher.contains_profanity(text)
        )
        ok &= same
        ref_s = best_of(reference.contains_profanity, text, repeats=5 if size <= 500 else 3)
        ours_s = best_of(matcher.contains_profanity, text, repeats=300)
        ratio = ref_s / ours_s
        ok &= ratio >= MIN_RATIO
        rows.append(
            {
                "chars": len(text),
                "tokens": len(text.split()),
                "profane_terms": len(matcher.matched_terms(text)),
                "better_profanity_ms": ref_s * 1e3,
                "profanity_matcher_ms": ours_s * 1e3,
                "speedup": ratio,
                "same_output": same,
            }
        )

    print("contains_profanity, best of N (ms per call)")
    print(f"{'chars':>6} {'better_profanity':>17} {'ProfanityMatcher':>17} {'speed-up':>10}  same")
    for row in rows:
        print(
            f"{row['chars']:>6} {row['better_profanity_ms']:>17.3f} "
            f"{row['profanity_matcher_ms']:>17.4f} {row['speedup']:>9.0f}x  {row['same_output']}"
        )
    print(
        f"matcher build {build_ms:.0f} ms; retained memory {(current - baseline) / 1e6:.2f} MB "
        f"(tracemalloc, construction peak {(peak - baseline) / 1e6:.2f} MB)"
    )
    verdict = "OK" if ok else f"FAIL (need speed-up >= {MIN_RATIO:.0f}x and identical output)"
    print(verdict)

    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "min_ratio": MIN_RATIO,
                    "rows": rows,
                    "build_ms": build_ms,
                    "retained_bytes": current - baseline,
                    "construction_peak_bytes": peak - baseline,
                    "ok": ok,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
