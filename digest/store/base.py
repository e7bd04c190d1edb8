"""The connection: one SQLite file in WAL mode, its pragmas, and its migrations. What is
SQLite-specific lives here, in migrations.py and in fulltext.py (FTS5); upserts are written
`ON CONFLICT ... DO`, which PostgreSQL reads alike, and two functions elsewhere are SQLite's
spelling (`group_concat` in entries.py, `instr` in ledger.py). A PostgreSQL store would
replace these three modules and those two words, not the rest."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from digest.errors import StoreError
from digest.store.migrations import MIGRATIONS, statements


class Database:
    """Opens (creating and migrating) the file. Construct with a path; `:memory:` is not
    supported (WAL needs a file)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # the operator's alone; SQLite gives -wal and -shm the
                with contextlib.suppress(FileExistsError):  # same mode as the database file
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self.db = sqlite_utils.Database(self.path)
            conn = self.db.conn
            conn.execute("PRAGMA busy_timeout = 10000")  # another process may be writing
            _wal(conn)
            # Write transactions take the write lock when they begin, waiting for it under the
            # busy timeout. A deferred one that read first cannot upgrade once another
            # connection has written, and fails at once with "database is locked" (seen with
            # `digest run` polling and sending at the same time).
            conn.isolation_level = "IMMEDIATE"
            conn.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL, much faster
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot use the database {str(self.path)!r} ({e}); point "
                             "[digest] database at a digest database or a new file.") from None
        except OSError as e:
            raise StoreError(f"cannot create the database {str(self.path)!r} ({e.strerror}); "
                             "check the directory and its permissions.") from None

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        if self.schema_version == len(MIGRATIONS):
            return
        # Under the write lock, and the version read again inside it: two processes opening a
        # new database at once must not both run a migration. Statement by statement, since
        # executescript would commit the transaction first.
        with self.writing():
            current = self.schema_version
            if current > len(MIGRATIONS):
                raise StoreError(f"the database {str(self.path)!r} has schema version {current},"
                                 f" newer than this digest understands ({len(MIGRATIONS)}); "
                                 "upgrade digest.")
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for statement in statements(MIGRATIONS[version - 1]):
                    self.db.conn.execute(statement)
                self.db.conn.execute(f"PRAGMA user_version = {version}")

    @contextlib.contextmanager
    def writing(self):
        """One write transaction around reads and the writes they decide: begun before the
        first read, holding the write lock, committed at the end or rolled back on an error.
        `with self.db.conn:` alone is not that: a read does not begin a transaction, and
        sqlite-utils' execute() commits at once a write that began one."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def in_query(self, sql: str, params: list, values: list) -> list[tuple]:
        """`sql` with its one `IN ({})` filled for `values`, in chunks under SQLite's
        bound-variable limit."""
        out: list[tuple] = []
        for i in range(0, len(values), 900):
            chunk = values[i:i + 900]
            out.extend(self.db.execute(sql.format(",".join("?" * len(chunk))), params + chunk))
        return out


def _wal(conn: sqlite3.Connection, seconds: float = 10) -> None:
    """Switch to WAL (persistent: once is enough for every later connection). On a new file
    that another connection is switching at the same moment, SQLite answers "database is
    locked" at once instead of waiting under the busy timeout; so wait here, briefly."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)

