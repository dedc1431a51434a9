"""Many rows into one table at once: on PostgreSQL a binary ``COPY`` (an ``INSERT … SELECT FROM
unnest`` of one array per column where rows whose key is taken are to be skipped), on SQLite an
``executemany``; which of many keys a table holds already, with one statement of one array
(``stored_keys``); and a batch written without that look-up unless it meets a key stored before
(``written_optimistically``).

Why: the read side's writes (feed items, routing summaries, sealed audit records) and a grouped
publish are batches of tens to hundreds of rows. Through SQLAlchemy's ``executemany`` each row
is its own bind and execute in asyncpg and in the server, and SQLAlchemy builds its parameters
row by row; a ``COPY`` is one round of the protocol in which asyncpg encodes each value once in
C (2,000 audit records: 25 ms of Python and 39 ms of PostgreSQL CPU as ``unnest`` arrays, 12 and
30 ms as a ``COPY``). Every value still goes through its column type's own bind processing (JSON
through the engine's serializer, times through ``UTCDateTime``), and columns left out of the
rows get their Python-side defaults as an ``INSERT`` would. A value too long for its column is
refused by the column, never cut to fit. Errors come through SQLAlchemy as from any statement.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Column, Table, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause

# "VARCHAR(36)" -> "VARCHAR": the array's element type without its length or precision.
_MODIFIER = re.compile(r"\(.*?\)")


@dataclass(frozen=True)
class _Plan:
    statement: TextClause | None  # the unnest INSERT where taken keys are skipped; else a COPY
    columns: tuple[str, ...]
    process: tuple[Callable[[Any], Any] | None, ...]
    defaults: Mapping[str, Any]


_plans: dict[tuple[Table, str, frozenset[str], bool], _Plan] = {}

_lookups: dict[tuple[Column[Any], str], TextClause] = {}

# Planned for the array it is given at each execution, never by a generic plan: a prepared
# statement's generic plan, made while a table is fresh and not yet analysed, scans the table
# instead of using its unique index, and stays after the table has grown (session 10 measured
# PostgreSQL's CPU per event going from 0.2 to 1.4-5 ms that way). Local to the transaction.
_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def stored_keys(session: AsyncSession, column: Column[Any], keys: Sequence[Any]) -> set[Any]:
    """Which of ``keys`` the unique ``column`` holds already, in the session's transaction.

    Why not ``column.in_(keys)``: SQLAlchemy renders an ``IN`` of one bound parameter per key, a
    new statement for each length of the list, which asyncpg then prepares and PostgreSQL
    parses and plans anew; for the read side's lists of up to 2,000 keys that cost about 8 ms of
    Python and 2 ms of PostgreSQL per lookup. On PostgreSQL this is one statement, ``= ANY`` of
    one array, planned for the array it is given. On SQLite the ``IN`` stays."""
    if not keys:
        return set()
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        return set((await session.execute(select(column).where(column.in_(keys)))).scalars())
    statement = _lookups.get((column, dialect.name))
    if statement is None:
        quote = dialect.identifier_preparer.quote
        # Identifiers and types from the table's own metadata, never from a request.
        statement = text(
            f"SELECT {quote(column.name)} FROM "  # noqa: S608
            f"{dialect.identifier_preparer.format_table(column.table)} "
            f"WHERE {quote(column.name)} = ANY(CAST(:keys AS {_element_type(dialect, column)}[]))"
        )
        _lookups[(column, dialect.name)] = statement
    await session.execute(_CUSTOM_PLANS)
    return set((await session.execute(statement, {"keys": list(keys)})).scalars())


T = TypeVar("T")


async def written_optimistically(write: Callable[[bool], Awaitable[T]]) -> T:
    """``write(look_first)`` is a transaction that stores a batch idempotently: it leaves out the
    rows whose keys are stored already, which it looks up first (``stored_keys``) when told to.
    Run it first without the look-up, as if none were; a batch that meets a key stored before
    (its insert fails on the unique key and its transaction rolls back) is written again,
    looking first. Why: keys are stored already only for an event decided again, which is rare,
    and without the look-up of every batch PostgreSQL's CPU per event in the direct run fell
    from 0.145-0.148 to 0.119-0.125 ms (docs/bench/journal.md, session 15)."""
    try:
        return await write(False)
    except IntegrityError:
        return await write(True)


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_conflicts: bool = False,
) -> None:
    """Insert ``rows`` (each with the same keys) into ``table`` in the session's transaction;
    with ``skip_conflicts`` a row whose unique key is taken is left out (``ON CONFLICT DO
    NOTHING``), not an error."""
    if not rows:
        return
    keys = frozenset(rows[0])
    unknown = keys - set(table.columns.keys())
    if unknown:
        raise ValueError(f"{table.name} has no column {sorted(unknown)}")
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        stmt = sqlite.insert(table).on_conflict_do_nothing() if skip_conflicts else insert(table)
        await session.execute(stmt, list(rows))
        return
    plan = _plan(table, dialect, keys, skip_conflicts)
    if plan.statement is None:
        await _copy(session, table, plan, rows)
        return
    arrays = {f"p{i}": values for i, values in enumerate(_values(plan, rows))}
    await session.execute(plan.statement, arrays)


def _values(plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Each of the plan's columns' values over the rows, as bound: through the column type's
    bind processing, the Python-side default where the rows leave the column out."""
    columns: list[list[Any]] = []
    for name, process in zip(plan.columns, plan.process, strict=True):
        if name in plan.defaults:
            values = [plan.defaults[name]() for _ in rows]
        else:
            values = [row[name] for row in rows]
        columns.append(values if process is None else [process(v) for v in values])
    return columns


async def _copy(
    session: AsyncSession, table: Table, plan: _Plan, rows: Sequence[Mapping[str, Any]]
) -> None:
    """The rows by binary ``COPY`` on the session's connection, in its transaction: the values
    as the plan's columns would bind them, each encoded once (the ``unnest`` arrays cost asyncpg
    a check per element whether it is a nested array, and PostgreSQL the executor's unnest); a
    refusal comes as the same SQLAlchemy error as from a statement."""
    records = list(zip(*_values(plan, rows), strict=True))
    connection = await session.connection()
    # The DBAPI connection is SQLAlchemy's adaptor of the asyncpg connection (Any: COPY and the
    # error translation are the adaptor's, not in the DBAPI protocol).
    adapted: Any = (await connection.get_raw_connection()).dbapi_connection
    if not adapted.driver_connection.is_in_transaction():
        # The adaptor begins the transaction lazily, at its first statement; a COPY that came
        # first would run outside it and stay when it rolls back. One statement begins it,
        # through SQLAlchemy: the adaptor's own begin, called directly, saved 0.2 ms of CPU but
        # let a dead connection's error past SQLAlchemy's translation and pool invalidation (the
        # API answered 500 instead of 503 while the database was down; docs/bench/journal.md,
        # session 17).
        await connection.exec_driver_sql("SELECT 1")
    try:
        await adapted.driver_connection.copy_records_to_table(
            table.name, schema_name=table.schema, records=records, columns=list(plan.columns)
        )
    except Exception as err:
        dbapi = connection.dialect.loaded_dbapi
        try:
            adapted._handle_exception(err)  # the driver's error as the DBAPI's, as for a statement
        except dbapi.Error as translated:
            raise DBAPIError.instance(
                f"COPY {table.name}", None, translated, dbapi.Error, dialect=connection.dialect
            ) from err
        raise


def _plan(table: Table, dialect: Dialect, keys: frozenset[str], skip_conflicts: bool) -> _Plan:
    known = _plans.get((table, dialect.name, keys, skip_conflicts))
    if known is not None:
        return known
    defaults = {c.name: _default(c) for c in table.columns if c.name not in keys and c.default}
    columns = tuple(c for c in table.columns if c.name in keys or c.name in defaults)
    plan = _Plan(
        statement=_skipping_insert(table, dialect, columns) if skip_conflicts else None,
        columns=tuple(c.name for c in columns),
        process=tuple(c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns),
        defaults=defaults,
    )
    _plans[(table, dialect.name, keys, skip_conflicts)] = plan
    return plan


def _skipping_insert(
    table: Table, dialect: Dialect, columns: tuple[Column[Any], ...]
) -> TextClause:
    """``INSERT … SELECT * FROM unnest(one array per column) ON CONFLICT DO NOTHING``."""
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(
        f"CAST(:p{i} AS {_element_type(dialect, c)}[])" for i, c in enumerate(columns)
    )
    # Identifiers and types from the table's own metadata, never from a request.
    return text(
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "  # noqa: S608
        f"({', '.join(quote(c.name) for c in columns)}) SELECT * FROM unnest({arrays})"
        " ON CONFLICT DO NOTHING"
    )


def _element_type(dialect: Dialect, column: Column[Any]) -> str:
    """The column's type as an array's element type: without its length or precision, so that
    a value too long for the column is refused by the column, never cut by the cast."""
    return _MODIFIER.sub("", dialect.type_compiler_instance.process(column.type))


def _default(column: Column[Any]) -> Callable[[], Any]:
    """The column's Python-side default as a function of nothing (SQLAlchemy wraps a callable
    default to take the execution context, which none of ours reads)."""
    default: Any = column.default
    if default.is_callable:
        return lambda: default.arg(None)
    if default.is_scalar:
        return lambda: default.arg
    raise ValueError(f"{column} has a default that is not a value or a function")
