"""Fast, verdict-identical replacement for ``better_profanity`` 0.7.0 (default word list).

Why this module exists
----------------------
``better_profanity.Profanity.censor`` walks the text character by character and, for every word
and for every join of that word with the next ``MAX_NUMBER_COMBINATIONS`` (5) words, asks
``x in CENSOR_WORDSET``. That word set is a Python *list* of 916 ``VaryingString`` objects, so each
question compares ``x`` against all 916 entries letter by letter: O(words x list) with a large
constant. A 450-character comment costs ~60 ms, ``"a " * 20000`` costs ~26 s (a DoS risk).

How it works
------------
The package's algorithm is replayed at *token* level, quirks included:

* the text is split once with a compiled regex whose character class is the package's own
  ``ALLOWED_CHARACTERS`` (ASCII letters/digits, ``@ $ * " '`` and ``alphabetic_unicode.json``);
  tokens are the runs of allowed characters, everything else is a separator;
* all tokens are lowercased in one ``str.lower`` call and mapped with ``str.translate`` through a
  *fine* class table (only ``i~l`` and ``u~v`` merged; the non-letter leet characters
  ``@ * 4 1 0 3 $ 5 7`` become a marker). A frozenset of the fine forms of all entry prefixes
  (2,802 strings) rejects most tokens with one C-level set intersection: a match can only
  start at a token whose form is a prefix of some entry's form. Tokens holding a leet symbol
  use the *coarse* table instead (the union-find closure of ``CHARS_MAPPING``: ``a i o u v e l``
  and their symbols form one class, ``s $ 5`` another, ``t 7`` a third; 2,398 prefixes). Every
  leet variant of an entry has the same coarse form as the entry, so both filters are
  *necessary* conditions and never lose a match;
* only candidate tokens run the package's exact logic: the joins with the next tokens, without
  and with the original separators (each piece lowercased exactly as the package does), in the
  package's order, then the single-token check. A join is abandoned as soon as it is longer
  than the longest entry (23) or can no longer be a prefix of a variant (fine/coarse prefix set,
  plus an exact prefix-trie regex for strings with leet symbols). Exact membership is one small
  compiled regex per fine or coarse form (an alternation of per-position leet character
  classes): the same per-position rule as ``VaryingString.__eq__``.

Data structure, memory and speed (measured here, Python 3.11, ``bench/profanity_bench.py``)
------------------------------------------------------------------------------------------
The matcher retains ~1.4 MB (tracemalloc, ``re`` cache purged; construction peak ~4.9 MB, most
of it the temporary reference ``Profanity()``) and builds in ~120 ms. ``contains_profanity`` is
~x1,850 faster than the package: 0.06 ms vs 111 ms for 500 characters, 0.58 ms vs 1,089 ms for
5,000 characters.

A frozenset of all 495,243 leet variants was considered: it costs 47 MB (tracemalloc) and 0.5 s
to build per process, and it can only answer "is this exactly a variant?", not "can this still
grow into one?", which is what prunes joins. Exact checks are rare (~27 regex ``fullmatch``
calls, ~1.5 % of the time, for the 5,000-character comment), so the frozenset would save at
most that for 33x the memory. The compact structure was chosen.

Worst cases stay linear: every token takes part in at most 5 joins of bounded length, probe
results are memoised per call (repetitive adversarial input), and the only regexes run are the
tokeniser, a one-class scan for astral characters and anchored ``fullmatch`` calls on strings of
at most 23 characters. Measured (``censor``, best of 5): ``"a " * 2500`` 3 ms (the package:
3.3 s), ``"* " * 2500`` 5 ms (3.5 s), ``"1 " * 2500`` 3 ms (3.2 s); ``"a " * 20000`` ~25 ms
(the package: ~26 s); 5,000 ``*``, ``@``, letters or separators < 0.1 ms; 5,000 combining
marks ~0.3 ms.

How equality with the package is guaranteed
-------------------------------------------
``tests/test_profanity_parity.py`` compares ``censor(text, censor_char)`` (the whole output
string) and ``contains_profanity`` with a private, never-mutated ``better_profanity.Profanity()``
on thousands of generated texts (every entry in many forms, random compositions with leetspeak,
separators, zero-width spaces, non-ASCII letters) plus a Hypothesis property. The word list,
``CHARS_MAPPING``, ``MAX_NUMBER_COMBINATIONS`` and the allowed characters are read from the
installed package at construction, and the assumptions this replay relies on (one-character
leet alternatives, ``MAX_NUMBER_COMBINATIONS >= 2``, no whitespace among allowed characters) are
checked there, so an incompatible package version fails loudly instead of silently diverging.

Replicated quirks of better_profanity 0.7.0
-------------------------------------------
* A match is replaced by ``censor_char * 4`` whatever its length (``""`` for ``censor_char=""``).
* A text whose only allowed character is its last character is returned unchanged, and a
  one-character token at the very end of the text never takes part in a join (``s h i t``).
* Joins are tried for up to 5 following tokens, first without separators, then with the
  original separators; the shortest matching join wins and swallows the separators.
* Lowercasing is Python's ``str.lower`` (so ``FUC\\u212a`` with a Kelvin sign matches ``fuck``,
  ``İ`` becomes two characters and never matches ``i``). No accent or homoglyph folding.
* Entries whose non-allowed characters can never be produced (``s.o.b.``, ``s & m``) never match.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from better_profanity import Profanity
from better_profanity.constants import ALLOWED_CHARACTERS

__all__ = ["ProfanityMatcher", "default_matcher"]

_REFERENCE_CENSOR_CHAR = "*"
_MARK = "\x00"  # stands for any non-letter leet character in the fine class map
_DEAD, _PREFIX, _MATCH = 0, 1, 2
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_Splitter = Callable[[str], list[str]]


def _char_class(chars: Iterable[str]) -> str:
    """Return a regex character class body (without brackets) for single code points."""
    codes = sorted({ord(c) for c in chars})
    out: list[str] = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = codes[i], codes[j]
        out.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
        i = j + 1
    return "".join(out)


def _class_table(
    alphabet: set[str], mapping: dict[str, tuple[str, ...]], skip: frozenset[str]
) -> dict[int, str]:
    """Union-find closure of ``mapping`` (ignoring ``skip``): ``str.translate`` table that maps
    every character of ``alphabet`` to the smallest member of its class (identity omitted)."""
    parent = {c: c for c in alphabet}

    def find(c: str) -> str:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for key, alts in mapping.items():
        for alt in alts:
            if alt in skip or key in skip:
                continue
            ra, rb = find(key), find(alt)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {ord(c): find(c) for c in alphabet if find(c) != c}


def _prefix_trie_pattern(entries: Iterable[str], mapping: dict[str, tuple[str, ...]]) -> str:
    """Regex whose ``fullmatch`` accepts exactly the prefixes of the entries' leet variants."""
    trie: dict[str, Any] = {}
    for entry in entries:
        node = trie
        for c in entry:
            node = node.setdefault(c, {})

    def emit(node: dict[str, Any]) -> str:
        alts = []
        for c in sorted(node):
            options = mapping.get(c, (c,))
            head = (
                re.escape(options[0])
                if len(options) == 1
                else "[" + "".join(re.escape(a) for a in options) + "]"
            )
            alts.append(head + emit(node[c]))
        return "(?:" + "|".join(alts) + ")?" if alts else ""

    return emit(trie)


class ProfanityMatcher:
    """Token-level replay of ``better_profanity.Profanity()`` with its default word list.

    Instances are immutable after construction and safe to share between threads.
    """

    __slots__ = (
        "_split",
        "_split_bmp",
        "_coarse",
        "_fine",
        "_coarse_prefixes",
        "_fine_prefixes",
        "_coarse_exact",
        "_fine_exact",
        "_prefix_rx",
        "_max_join",
        "_max_len",
    )

    def __init__(self) -> None:
        reference = Profanity()  # default word list, private instance, discarded after reading
        entries = sorted({str(word) for word in reference.CENSOR_WORDSET})
        mapping: dict[str, tuple[str, ...]] = {
            str(k): tuple(str(a) for a in v) for k, v in reference.CHARS_MAPPING.items()
        }
        self._max_join: int = int(reference.MAX_NUMBER_COMBINATIONS)
        allowed = {str(c) for c in ALLOWED_CHARACTERS}

        # The replay below relies on these properties of better_profanity 0.7.0.
        if not entries:
            raise RuntimeError("better_profanity default word list is empty")
        if any(len(a) != 1 for alts in mapping.values() for a in alts):
            raise RuntimeError("CHARS_MAPPING alternatives must be single characters")
        if any(len(c) != 1 or c.strip() == "" for c in allowed):
            raise RuntimeError("ALLOWED_CHARACTERS must be single non-whitespace characters")
        if self._max_join < 2:
            raise RuntimeError("MAX_NUMBER_COMBINATIONS < 2 uses a different window quirk")
        if any(e != e.lower() for e in entries):
            raise RuntimeError("word list entries must be lowercase")

        # Leet characters that are not letters ("@ * 4 1 0 3 $ 5 7") make the coarse classes huge;
        # strings without them are filtered with a much finer class map (only i~l and u~v).
        symbols = {a for k, alts in mapping.items() for a in alts if a != k and not a.isalpha()}
        if symbols & mapping.keys() or _MARK in symbols or " " in symbols:
            raise RuntimeError("unexpected CHARS_MAPPING layout")
        alphabet = {c for e in entries for c in e} | mapping.keys() | symbols
        if _MARK in alphabet:
            raise RuntimeError("marker character occurs in the word list")
        alphabet.update(a for alts in mapping.values() for a in alts)
        coarse = _class_table(alphabet, mapping, skip=frozenset())
        fine = _class_table(alphabet - symbols, mapping, skip=frozenset(symbols))
        fine.update({ord(c): _MARK for c in symbols})
        if " " in coarse.values() or " " in fine.values():
            raise RuntimeError("space must not share a leet class with other characters")
        self._coarse: dict[int, str] = coarse
        self._fine: dict[int, str] = fine

        coarse_prefixes: set[str] = set()
        fine_prefixes: set[str] = set()
        coarse_groups: dict[str, list[str]] = {}
        fine_groups: dict[str, list[str]] = {}
        for entry in entries:
            position_classes = []
            for c in entry:
                alts = mapping.get(c, (c,))
                if len(alts) == 1:
                    position_classes.append(re.escape(alts[0]))
                else:
                    position_classes.append("[" + "".join(re.escape(a) for a in alts) + "]")
            pattern = "".join(position_classes)
            cform = entry.translate(coarse)
            coarse_prefixes.update(cform[:k] for k in range(1, len(cform) + 1))
            coarse_groups.setdefault(cform, []).append(pattern)
            fform = entry.translate(fine)
            cut = fform.find(_MARK)
            if cut < 0:
                fine_groups.setdefault(fform, []).append(pattern)
                cut = len(fform)
            fine_prefixes.update(fform[:k] for k in range(1, cut + 1))
        self._coarse_prefixes: frozenset[str] = frozenset(coarse_prefixes)
        self._fine_prefixes: frozenset[str] = frozenset(fine_prefixes)
        self._coarse_exact: dict[str, re.Pattern[str]] = {
            k: re.compile("|".join(v)) for k, v in coarse_groups.items()
        }
        self._fine_exact: dict[str, re.Pattern[str]] = {
            k: re.compile("|".join(v)) for k, v in fine_groups.items()
        }
        self._prefix_rx: re.Pattern[str] = re.compile(_prefix_trie_pattern(entries, mapping))
        self._max_len: int = max(len(e) for e in entries)
        # One character class over all allowed characters makes `re` test every separator
        # against ~100 astral ranges; a BMP-only class compiles to a bitmap and is ~4x faster,
        # so it is used whenever the text has no astral character (identical tokens then).
        self._split: _Splitter = re.compile(f"([{_char_class(allowed)}]+)").split
        bmp = (c for c in allowed if ord(c) <= 0xFFFF)
        self._split_bmp: _Splitter = re.compile(f"([{_char_class(bmp)}]+)").split

    # ------------------------------------------------------------------ internals

    def _probe(self, lowered: str, fform: str) -> int:
        """Classify a lowercased string (``fform`` is its fine form) as _MATCH (an entry
        variant), _PREFIX (could still grow into one) or _DEAD."""
        if _MARK not in fform:
            pattern = self._fine_exact.get(fform)
            if pattern is not None and pattern.fullmatch(lowered) is not None:
                return _MATCH
            return _PREFIX if fform in self._fine_prefixes else _DEAD
        # Leet symbols present: coarse classes, then the exact prefix trie (coarse is loose).
        cform = lowered.translate(self._coarse)
        pattern = self._coarse_exact.get(cform)
        if pattern is not None and pattern.fullmatch(lowered) is not None:
            return _MATCH
        if cform in self._coarse_prefixes and self._prefix_rx.fullmatch(lowered) is not None:
            return _PREFIX
        return _DEAD

    def _scan(self, text: str) -> tuple[list[str], list[tuple[int, int]]]:
        """Split ``text`` and return (parts, matches).

        ``parts`` alternates separators and tokens: ``[sep, tok0, sep, tok1, ..., sep]``;
        ``matches`` lists ``(first_token, last_token)`` index pairs that better_profanity
        replaces by ``censor_char * 4`` (the separators between them included).
        """
        split = self._split_bmp if text.isascii() or not _ASTRAL.search(text) else self._split
        parts = split(text)
        n = len(parts) // 2
        if n == 0 or (n == 1 and not parts[2] and len(parts[1]) == 1):
            return parts, []  # package quirk: nothing to parse -> text returned as is
        tokens = parts[1::2]
        # " " is never an allowed character, and it stops str.lower()'s final-sigma context, so
        # lowering the joined tokens equals lowering each token (as the package does).
        lowered = " ".join(tokens).lower()
        flowered = lowered.translate(self._fine)
        ftoks = flowered.split(" ")
        fine_hits = self._fine_prefixes.intersection(ftoks)
        candidates: list[int]
        if _MARK in flowered:  # some token holds a leet symbol: those need the coarse filter
            coarse, coarse_prefixes = self._coarse, self._coarse_prefixes
            ltoks = lowered.split(" ")
            candidates = [
                i
                for i, ftok in enumerate(ftoks)
                if ftok in fine_hits
                or (_MARK in ftok and ltoks[i].translate(coarse) in coarse_prefixes)
            ]
            if not candidates:
                return parts, []
        else:
            if not fine_hits:
                return parts, []
            candidates = [i for i, ftok in enumerate(ftoks) if ftok in fine_hits]
            ltoks = lowered.split(" ")

        fine, fine_prefixes = self._fine, self._fine_prefixes
        max_len = self._max_len
        probe = self._probe
        # A one-character token that ends the text never takes part in a join.
        join_limit = n - 1 if (not parts[-1] and len(tokens[-1]) == 1) else n
        memo: dict[str, int] = {}  # probe results, pays off on repetitive (adversarial) input
        matches: list[tuple[int, int]] = []
        resume = 0
        for i in candidates:
            if i < resume:
                continue
            ltok = ltoks[i]
            # Joins with the following tokens, as in utils.any_next_words_form_swear_word:
            # the shortest join wins, the join without separators is tried first.
            full = fws = ltok
            ffull = ffws = ftoks[i]
            full_alive = fws_alive = True
            matched_to = -1
            for j in range(i + 1, min(i + 1 + self._max_join, join_limit)):
                if full_alive:
                    piece = ltoks[j]
                    if len(full) + len(piece) > max_len:
                        full_alive = False
                    else:
                        full += piece
                        ffull += ftoks[j]
                        if ffull in fine_prefixes or _MARK in ffull:
                            state = memo.get(full)
                            if state is None:
                                state = memo[full] = probe(full, ffull)
                        else:
                            state = _DEAD  # fast path: fine form is not even a prefix
                        if state == _MATCH:
                            matched_to = j
                            break
                        full_alive = state == _PREFIX
                if fws_alive:
                    sep, tok = parts[2 * j], tokens[j]
                    if len(fws) + len(sep) + len(tok) > max_len:
                        fws_alive = False
                    else:
                        piece = (sep + tok).lower()
                        fws += piece
                        ffws += piece.translate(fine)
                        if ffws in fine_prefixes or _MARK in ffws:
                            state = memo.get(fws)
                            if state is None:
                                state = memo[fws] = probe(fws, ffws)
                        else:
                            state = _DEAD  # fast path: fine form is not even a prefix
                        if state == _MATCH:
                            matched_to = j
                            break
                        fws_alive = state == _PREFIX
                if not (full_alive or fws_alive):
                    break
            if matched_to >= 0:
                matches.append((i, matched_to))
                resume = matched_to + 1
            else:
                state = memo.get(ltok)
                if state is None:
                    state = memo[ltok] = probe(ltok, ftoks[i])
                if state == _MATCH:
                    matches.append((i, i))
        return parts, matches

    @staticmethod
    def _assemble(parts: list[str], matches: list[tuple[int, int]], replacement: str) -> str:
        out: list[str] = []
        pos = 0
        for first, last in matches:
            out.extend(parts[pos : 2 * first + 1])
            out.append(replacement)
            pos = 2 * last + 2
        out.extend(parts[pos:])
        return "".join(out)

    # ------------------------------------------------------------------ public API

    def censor(self, text: str, censor_char: str = "*") -> str:
        """Return ``text`` exactly as ``better_profanity.Profanity().censor`` would."""
        parts, matches = self._scan(text)
        if not matches:
            return text
        return self._assemble(parts, matches, censor_char * 4)

    def contains_profanity(self, text: str) -> bool:
        """Return ``better_profanity``'s verdict: ``text != censor(text)``."""
        parts, matches = self._scan(text)
        if not matches:
            return False
        return self._assemble(parts, matches, _REFERENCE_CENSOR_CHAR * 4) != text

    def matched_terms(self, text: str) -> list[str]:
        """Return the censored spans as written in ``text``, in order, without duplicates.

        A join keeps its original separators (``"bull shit"``). The list is empty exactly when
        :meth:`contains_profanity` is false.
        """
        parts, matches = self._scan(text)
        if not matches:
            return []
        if self._assemble(parts, matches, _REFERENCE_CENSOR_CHAR * 4) == text:
            return []
        seen: dict[str, None] = {}
        for first, last in matches:
            seen.setdefault("".join(parts[2 * first + 1 : 2 * last + 2]), None)
        return list(seen)


_default: ProfanityMatcher | None = None
_default_lock = threading.Lock()


def default_matcher() -> ProfanityMatcher:
    """Return the process-wide matcher, building it on first use (thread-safe)."""
    global _default
    matcher = _default
    if matcher is None:
        with _default_lock:
            matcher = _default
            if matcher is None:
                matcher = ProfanityMatcher()
                _default = matcher
    return matcher
