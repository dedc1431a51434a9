"""Work that arrives while some is being done, done together in the next round.

Some work costs about as much for many items as for one: an admission query (most of it is
OPA's fixed cost per query, the policy data's checks) and the write of a one-event publish (a
transaction and a Kafka round trip). Requests come in concurrently, each with its own few items;
coalesced, the items that arrive while a round is out wait for it to return and then go as one.
A lone item is handled at once, so nothing waits when the API is quiet, and under load an item
waits at most for the round ahead of it: the same pattern as a database's group commit.

Each item gets its own answer (matched back by position), so what is decided or written does not
change, only how many rounds do it. Users: ``PolicyClient.admissions`` and
``broker.ingest.service.grouped_publishes``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Q = TypeVar("Q")
A = TypeVar("A")


class Coalesced(Generic[Q, A]):
    def __init__(self, ask: Callable[[list[Q]], Awaitable[list[A]]], most: int) -> None:
        """``ask`` answers a list of questions with exactly one answer each, in order (or
        raises); a query carries at most ``most`` questions unless one caller's list alone is
        longer."""
        self._ask = ask
        self._most = most
        self._waiting: list[tuple[list[Q], asyncio.Future[list[A]]]] = []
        self._asking: asyncio.Task[None] | None = None

    async def __call__(self, questions: list[Q]) -> list[A]:
        answer: asyncio.Future[list[A]] = asyncio.get_running_loop().create_future()
        self._waiting.append((questions, answer))
        if self._asking is None:
            # A context of its own: the queries belong to no one request, so their log lines
            # must not carry the request id of whichever caller happened to start the task.
            self._asking = asyncio.create_task(self._ask_all(), context=contextvars.Context())
        return await answer

    async def _ask_all(self) -> None:
        try:
            while self._waiting:
                await self._ask_next()
        finally:
            self._asking = None

    async def _ask_next(self) -> None:
        taken, count = 0, 0
        for questions, _ in self._waiting:
            if taken and count + len(questions) > self._most:
                break
            taken, count = taken + 1, count + len(questions)
        group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        try:
            answers = await self._ask([q for questions, _ in group for q in questions])
        except asyncio.CancelledError:
            for _, answer in [*group, *self._waiting]:
                answer.cancel()
            self._waiting = []
            raise
        except Exception as err:  # every caller of this query gets its failure
            for _, answer in group:
                if not answer.done():
                    answer.set_exception(err)
            return
        start = 0
        for questions, answer in group:
            if not answer.done():  # a caller that gave up (cancelled) is skipped
                answer.set_result(answers[start : start + len(questions)])
            start += len(questions)
