"""Concurrent admission questions share queries, and each caller still gets exactly the answers
to its own questions (broker/policy/coalesce.py)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from broker.runtime.coalesce import Coalesced


class Gated:
    """An asker that answers each question with its double, holds each query until released,
    and records the queries it was asked."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.queries: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_on = fail_on

    async def __call__(self, questions: list[int]) -> list[int]:
        self.queries.append(questions)
        await self.release.wait()
        if self.fail_on in questions:
            raise RuntimeError("no answer")
        return [2 * q for q in questions]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_question_is_asked_at_once() -> None:
    asker = Gated()
    asker.release.set()
    ask = Coalesced(asker, most=10)
    assert await ask([1, 2]) == [2, 4]
    assert asker.queries == [[1, 2]]


async def test_questions_arriving_meanwhile_go_together_in_the_next_query() -> None:
    asker = Gated()
    ask = Coalesced(asker, most=10)
    first = asyncio.create_task(ask([1]))
    await settle()
    later = [asyncio.create_task(ask(qs)) for qs in ([2, 3], [4], [5, 6, 7])]
    await settle()
    assert asker.queries == [[1]]  # the others wait for the query that is out
    asker.release.set()
    assert await first == [2]
    assert [await t for t in later] == [[4, 6], [8], [10, 12, 14]]
    assert asker.queries == [[1], [2, 3, 4, 5, 6, 7]]


async def test_a_query_carries_at_most_most_questions_unless_one_caller_has_more() -> None:
    asker = Gated()
    ask = Coalesced(asker, most=3)
    first = asyncio.create_task(ask([0]))
    await settle()
    later = [asyncio.create_task(ask(qs)) for qs in ([1, 2], [3], [4, 5, 6, 7], [8])]
    await settle()
    asker.release.set()
    await first
    assert [await t for t in later] == [[2, 4], [6], [8, 10, 12, 14], [16]]
    assert asker.queries == [[0], [1, 2, 3], [4, 5, 6, 7], [8]]


async def test_a_failed_query_fails_its_callers_only() -> None:
    asker = Gated(fail_on=2)
    ask = Coalesced(asker, most=2)
    first = asyncio.create_task(ask([1]))
    await settle()
    failing = [asyncio.create_task(ask([2])), asyncio.create_task(ask([3]))]
    after = asyncio.create_task(ask([4]))
    await settle()
    asker.release.set()
    assert await first == [2]
    for task in failing:
        with pytest.raises(RuntimeError, match="no answer"):
            await task
    assert await after == [8]
    assert asker.queries == [[1], [2, 3], [4]]


async def test_a_caller_that_gives_up_leaves_the_others_their_answers() -> None:
    asker = Gated()
    ask = Coalesced(asker, most=10)
    first = asyncio.create_task(ask([1]))
    await settle()
    gone = asyncio.create_task(ask([2]))
    kept = asyncio.create_task(ask([3]))
    await settle()
    gone.cancel()
    asker.release.set()
    assert await first == [2]
    assert await kept == [6]
    assert gone.cancelled()
    # And the next lone question is asked at once again.
    assert await ask([5]) == [10]


async def test_the_query_runs_outside_its_first_callers_context() -> None:
    """The log lines of a shared query name no one caller's request."""
    seen: list[str | None] = []
    request = contextvars.ContextVar[str | None]("request", default=None)

    async def asker(questions: list[int]) -> list[int]:
        seen.append(request.get())
        return questions

    ask = Coalesced(asker, most=10)
    request.set("req-1")
    assert await ask([1]) == [1]
    assert seen == [None]
