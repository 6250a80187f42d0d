"""Engine and session factory for any SQLAlchemy URL; SQLite gets WAL, foreign keys and a busy timeout."""

from __future__ import annotations

import os

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from study.schema import Base

DEFAULT_URL = "sqlite:///colorizer-study.sqlite"


def database_url(url: str | None = None) -> str:
    """``url``, else ``STUDY_DB_URL``, else a SQLite file in the working directory."""
    return url or os.environ.get("STUDY_DB_URL") or DEFAULT_URL


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, fast commits
    cursor.execute("PRAGMA busy_timeout=10000")  # concurrent writers wait instead of failing
    cursor.close()


def make_engine(url: str | None = None, create: bool = True) -> Engine:
    """An engine for ``url`` (see ``database_url``); creates the tables when ``create``."""
    url = database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if create:
        Base.metadata.create_all(engine)
        add_missing_columns(engine)
    return engine


def add_missing_columns(engine: Engine) -> list[str]:
    """Adds nullable columns that newer versions of the schema define to an existing database (no data is lost;
    the new columns stay empty for old rows)."""
    from sqlalchemy import inspect, text

    added = []
    inspector = inspect(engine)
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
                    added.append(f"{table.name}.{column.name}")
    return added


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
