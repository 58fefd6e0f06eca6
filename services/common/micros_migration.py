"""Alembic steps that turn DateTime columns into UtcMicros (BIGINT microseconds) and back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import op

from services.common.micros import from_micros, to_micros

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_DATETIME = sa.DateTime(timezone=True)
# Exact on every PostgreSQL version: before 14, extract() returns a double, and whole
# seconds times a million plus a fraction would round; whole seconds and the microseconds
# within the minute are each exact as doubles. date_trunc floors, so the sum is exact for
# times before 1970 too.
# asyncpg writes datetime.max and datetime.min as 'infinity' and '-infinity', and reads them
# back as those: they become the micros of the same two datetimes.
_PG_TO_MICROS = (
    "(CASE WHEN {c} = 'infinity' THEN 253402300799999999"
    " WHEN {c} = '-infinity' THEN -62135596800000000"
    " ELSE extract(epoch from date_trunc('second', {c}))::bigint * 1000000"
    " + extract(microseconds from {c})::bigint % 1000000 END)"
)
# integer division and remainder, each times an exact interval: no float on the way back
_PG_FROM_MICROS = (
    "(timestamptz 'epoch' + ({c} / 1000000) * interval '1 second'"
    " + ({c} % 1000000) * interval '1 microsecond')"
)
# what SQLAlchemy's SQLite DATETIME writes: UTC text without an offset
_SQLITE_TEXT = "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}.{:06d}"


def datetimes_to_micros(table: str, columns: Sequence[str]) -> None:
    """Convert the columns' values in place, same instants, indexes kept."""
    bind = op.get_bind()
    # a column already BIGINT holds micros (a schema made from a later build's metadata and
    # stamped back, as some tests do): converting it again would fail, so it is left alone
    found = {c["name"]: c["type"] for c in sa.inspect(bind).get_columns(table)}
    columns = [c for c in columns if not isinstance(found[c], sa.Integer)]
    if not columns:
        return
    if bind.dialect.name == "postgresql":
        _pg_alter(bind, table, columns, "BIGINT", _PG_TO_MICROS)
        return
    # SQLite: the values first (an integer stays one in a DATETIME column), then the type;
    # the table copy batch mode makes casts to BIGINT, which keeps integers as they are
    _rewrite_rows(bind, table, columns, _text_to_micros)
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.alter_column(column, type_=sa.BigInteger(), existing_type=_DATETIME)


def micros_to_datetimes(table: str, columns: Sequence[str]) -> None:
    """The way back: the columns become DateTime(timezone=True) again, same instants."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _pg_alter(bind, table, columns, "TIMESTAMP WITH TIME ZONE", _PG_FROM_MICROS)
        return
    # SQLite: the type first (a cast of text to DATETIME would keep only the year), then text
    with op.batch_alter_table(table) as batch:
        for column in columns:
            batch.alter_column(column, type_=_DATETIME, existing_type=sa.BigInteger())
    _rewrite_rows(bind, table, columns, _micros_to_text)


def _pg_alter(
    bind: sa.Connection, table: str, columns: Sequence[str], type_: str, using: str
) -> None:
    # one ALTER TABLE: PostgreSQL rewrites the table and rebuilds its indexes once
    quote = bind.dialect.identifier_preparer.quote
    changes = ", ".join(
        f"ALTER COLUMN {quote(c)} TYPE {type_} USING {using.format(c=quote(c))}" for c in columns
    )
    op.execute(f"ALTER TABLE {quote(table)} {changes}")


def _rewrite_rows(
    bind: sa.Connection, table: str, columns: Sequence[str], convert: Callable[[Any], Any]
) -> None:
    quote = bind.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    rows = bind.exec_driver_sql(f"SELECT rowid, {names} FROM {quote(table)}").all()
    if not rows:
        return
    sets = ", ".join(f"{quote(c)} = :c{i}" for i, c in enumerate(columns))
    update = sa.text(f"UPDATE {quote(table)} SET {sets} WHERE rowid = :rowid")
    bind.execute(
        update,
        [
            {"rowid": row[0]} | {f"c{i}": convert(value) for i, value in enumerate(row[1:])}
            for row in rows
        ],
    )


def _text_to_micros(value: Any) -> int | None:
    """SQLAlchemy wrote UTC wall time without an offset: naive text is UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a DATETIME text, found {type(value).__name__}")
    moment = datetime.fromisoformat(value)
    return to_micros(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def _micros_to_text(value: Any) -> str | None:
    if value is None:
        return None
    m = from_micros(int(value))
    return _SQLITE_TEXT.format(m.year, m.month, m.day, m.hour, m.minute, m.second, m.microsecond)
