"""Split scripts: one Lua source cut into steps, run as one script or as one script a step
(docs/sharding-plan.md §2.0).

A change whose keys will live under several hash tags (a comment's bucket, its author) cannot be
one script on Redis Cluster once the tags differ. Its Lua is written as fragments, each a
function ``(KEYS, ARGV, carry) -> reply, carry`` over the keys of one tag:

- **combined** (a single server, a Sentinel master: they check no slots) the fragments are
  concatenated into one script, run in order inside it with ``carry`` handed on in memory:
  today's atomicity and round trips. The script's last ARGV says how many KEYS and ARGV each
  fragment takes.
- **stepped** (a ``RedisCluster``, or ``StoreCore.stepped`` set by a test) each fragment is a
  script of its own, sent in order to its own tag's slot; ``carry`` travels as JSON in the
  step's last ARGV and back in its reply, ``{carry JSON or nil (done), reply}``.

``STEPPED`` is a constant of each assembly, so a fragment writes what only the stepped run
needs (the outbox entry, the memo) only there. A step that is not idempotent (HINCRBY) keeps
its carry under a memo key (``Keys.step_memo``, PX STEP_MEMO_MS) and, run again with the same
id, returns it and changes nothing. The first (bucket) step writes an outbox entry
(``Keys.outbox``) atomically with the comment's change, naming the post-steps still owed; the
last step removes it. An entry older than STEP_TIMEOUT_MS is a change whose request died
between its steps: the sweep (store/sweep.py, ``comments-service sweep``) runs what it owes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# A step's memo outlives any retry of it (redis-py's, a request's) and the sweep's 30 s.
STEP_MEMO_MS = 120_000
# An outbox entry older than this is abandoned, not in flight: the sweep completes it. Clock
# skew between workers must stay well under it.
STEP_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Fragment:
    """One step's Lua: the body of ``function(KEYS, ARGV, carry)``, returning the reply and
    the carry for the next step (nil: the change is complete, no later step runs)."""

    name: str
    body: str


def _functions(fragments: Sequence[Fragment]) -> str:
    return "".join(
        f"local function step_{f.name}(KEYS, ARGV, carry)\n{f.body}\nend\n" for f in fragments
    )


def combined_source(prelude: str, fragments: Sequence[Fragment]) -> str:
    """Every fragment in one script. KEYS and ARGV are the fragments' in order, then one more
    ARGV: the JSON list of each fragment's key and arg counts. The reply is the last reply
    a fragment gave (nil replies do not count), once one ends the carry or the last ran."""
    calls = ", ".join(f"step_{f.name}" for f in fragments)
    return (
        "local STEPPED = false\n"
        + prelude
        + _functions(fragments)
        + f"""
local counts = cjson.decode(ARGV[#ARGV])
local carry, reply = {{}}, nil
local at_key, at_arg = 0, 0
for i, step in ipairs({{{calls}}}) do
  local keys, args = {{}}, {{}}
  for j = 1, counts[2 * i - 1] do keys[j] = KEYS[at_key + j] end
  for j = 1, counts[2 * i] do args[j] = ARGV[at_arg + j] end
  at_key, at_arg = at_key + counts[2 * i - 1], at_arg + counts[2 * i]
  local out
  out, carry = step(keys, args, carry)
  if out ~= nil then reply = out end
  if carry == nil then break end
end
return reply
"""
    )


def stepped_source(prelude: str, fragment: Fragment) -> str:
    """One fragment as a script: its KEYS and ARGV, then the carry's JSON as the last ARGV;
    the reply ``{next carry's JSON or nil, the fragment's reply}``."""
    return (
        "local STEPPED = true\n"
        + prelude
        + _functions([fragment])
        + f"""
local args = {{}}
for j = 1, #ARGV - 1 do args[j] = ARGV[j] end
local reply, carry = step_{fragment.name}(KEYS, args, cjson.decode(ARGV[#ARGV]))
if reply == nil then reply = false end
return {{carry and cjson.encode(carry) or false, reply}}
"""
    )


@dataclass(frozen=True)
class SplitSource:
    """A split script's two assemblies: the combined source and each step's."""

    combined: str
    steps: tuple[str, ...]

    @classmethod
    def of(cls, prelude: str, fragments: Sequence[Fragment]) -> SplitSource:
        return cls(
            combined_source(prelude, fragments),
            tuple(stepped_source(prelude, f) for f in fragments),
        )


def combined_args(
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
) -> tuple[list[Any], list[Any]]:
    """KEYS and ARGV of the combined script for each fragment's (keys, args)."""
    keys: list[Any] = []
    args: list[Any] = []
    counts: list[int] = []
    for step_keys, step_args in calls:
        keys += step_keys
        args += step_args
        counts += [len(step_keys), len(step_args)]
    return keys, [*args, json.dumps(counts)]


def step_args(args: Sequence[Any], carry: str | None) -> list[Any]:
    """A stepped script's ARGV: the step's own, then the carry (``{}`` for the first)."""
    return [*args, carry if carry is not None else "{}"]


def step_reply(reply: Any) -> tuple[str | None, Any]:
    """A stepped script's reply: (the next step's carry or None, the fragment's reply)."""
    carry, answer = reply
    return (None if carry is None else str(carry)), answer


# A test's hook into a split change: called after each step with the change's kind and the
# number of the step that ran (1 = the bucket step); raising there stops the change as a
# crash between two steps would.
StepFault = Callable[[str, int], None]


class StepsInterrupted(Exception):
    """Raised by a test's StepFault: the change stopped after a step, as if its process died."""
