"""Many threads doing one thing at once: each waits at a barrier, then runs, and its result
(or the exception it raised) comes back in thread order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(workers: int, work: Callable[[int], T], *, timeout: float = 60.0) -> list[T]:
    barrier = threading.Barrier(workers)
    results: dict[int, T] = {}
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[n] = work(n)
        except BaseException as error:  # surfaced below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a worker did not finish in time"
    assert not failures, failures
    return [results[n] for n in range(workers)]
