"""The delivery ledger's rows: one per (reader, local date, channel). The rules (states,
owners, leases) are in digest/ledger.py; these are its reads and its conditional writes, each
one transaction."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime

from digest.ledger import EMAIL, FAILED, LEASE, PENDING, SENDING, UNCONFIRMED, Delivery
from digest.models import iso_utc
from digest.store.base import Database

_DELIVERY_COLUMNS = ", ".join(f.name for f in fields(Delivery))


class LedgerStore(Database):
    def delivery(self, reader: str, day: str, channel: str = EMAIL) -> Delivery | None:
        rows = self._deliveries("WHERE reader = ? AND day = ? AND channel = ?",
                                [reader, day, channel])
        return rows[0] if rows else None

    def deliveries(self, reader: str | None = None, limit: int = 200) -> list[Delivery]:
        return self._deliveries(("WHERE reader = ? " if reader else "")
                                + "ORDER BY day DESC, reader LIMIT ?",
                                ([reader] if reader else []) + [limit])

    def delivered(self, reader: str, limit: int = 30) -> list[tuple[str, str]]:
        """(day, when) of the reader's emailed digests, newest first."""
        return [tuple(r) for r in self.db.execute(
            "SELECT day, updated_at FROM deliveries WHERE reader = ? AND channel = 'email' AND "
            "state IN ('sent', 'unconfirmed') AND content != '' ORDER BY day DESC LIMIT ?",
            [reader, limit])]

    def deliveries_in(self, states: tuple[str, ...], day: str | None = None) -> list[Delivery]:
        """Every row in these states (of `day`, or of any date), however old: a capped
        recent-first scan could miss one."""
        where = f"WHERE state IN ({','.join('?' * len(states))})"
        return self._deliveries(where + (" AND day = ?" if day else "") + " ORDER BY day, reader",
                                list(states) + ([day] if day else []))

    def lost_deliveries(self, now: datetime) -> list[Delivery]:
        """Digests that may never have arrived and that nothing sends by itself (ledger:
        Delivery.lost), of any age."""
        return [r for r in self.deliveries_in((UNCONFIRMED, SENDING)) if r.lost(now)]

    def _deliveries(self, tail: str, params: list) -> list[Delivery]:
        cur = self.db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {tail}", params)
        return [Delivery.of(r) for r in cur.fetchall()]

    def sent_contents(self, days: list[str]) -> dict[tuple[str, str], str]:
        """(reader, day) → what the digest held, for the digests of `days` that went out (or
        may have: unconfirmed)."""
        return {(r, d): c for r, d, c in self.in_query(
            "SELECT reader, day, content FROM deliveries WHERE state IN ('sent', 'unconfirmed')"
            " AND content != '' AND channel = 'email' AND day IN ({})", [], sorted(set(days)))}

    def sent_items(self, reader: str, ids: list[str]) -> tuple[dict[str, str], set[tuple[str, int]]]:
        """Of `ids`, those ever emailed to the reader (id → the first day), and the (id,
        version) pairs their digests have already told of as Updated."""
        sent = " FROM deliveries d, json_each(d.content, '$.{}') j WHERE d.reader = ? AND" \
               " d.channel = 'email' AND d.state IN ('sent', 'unconfirmed') AND d.content != ''"
        first = dict(self.in_query(
            "SELECT json_extract(j.value, '$[0]') AS entry, min(d.day)" + sent.format("items")
            + " AND json_extract(j.value, '$[0]') IN ({}) GROUP BY entry", [reader], ids))
        told = {(i, v) for i, v in self.db.execute(
            "SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[3].version')"
            + sent.format("updated"), [reader])}
        return first, told

    def claim_deliveries(self, keys: list[tuple[str, str]], owner: str, now: datetime,
                         states: tuple[str, ...] = (PENDING, FAILED),
                         channel: str = EMAIL) -> set[tuple[str, str]]:
        """Take the (reader, day) rows that are in `states` and held by no live run (a row
        not there yet is created 'pending'), for `owner` until now + LEASE. One write
        transaction: of two runs claiming at once, each row goes to exactly one. Returns the
        keys taken."""
        at, until = iso_utc(now), iso_utc(now + LEASE)
        taken = set()
        marks = ",".join("?" * len(states))
        with self.db.conn:
            self.db.conn.executemany(
                "INSERT INTO deliveries (reader, day, channel, state, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING",
                [(r, d, channel, at) for r, d in keys])
            for reader, day in keys:
                cur = self.db.execute(
                    "UPDATE deliveries SET owner = ?, lease_until = ?, updated_at = ? "
                    "WHERE reader = ? AND day = ? AND channel = ? "
                    f"AND state IN ({marks}) AND (owner = '' OR owner = ? OR lease_until <= ?)",
                    [owner, until, at, reader, day, channel, *states, owner, at])
                if cur.rowcount == 1:
                    taken.add((reader, day))
        return taken

    def advance(self, reader: str, day: str, owner: str, state: str, now: datetime,
                channel: str = EMAIL, **fields) -> bool:
        """Move an owned row to `state` and commit at once ('sending' must be on disk before
        the message goes out, 'sent' right after the server accepts). A settled state lets
        go of the row. False, and nothing written, when `owner` no longer holds it."""
        cols = {"state": state, "updated_at": iso_utc(now), **fields}
        if state not in (PENDING, SENDING):
            cols |= {"owner": "", "lease_until": ""}
        sets = ", ".join(f"{k} = :{k}" for k in cols)
        with self.db.conn:
            cur = self.db.execute(
                f"UPDATE deliveries SET {sets} WHERE reader = :reader AND day = :day "
                "AND channel = :channel AND owner = :me",
                {**cols, "reader": reader, "day": day, "channel": channel, "me": owner})
        return cur.rowcount == 1

    def settle_orphan(self, row: Delivery, state: str, now: datetime, detail: str) -> bool:
        """Resolve a row left in 'sending' by a run that is gone, if nobody did meanwhile."""
        with self.db.conn:
            cur = self.db.execute(
                "UPDATE deliveries SET state = ?, detail = ?, owner = '', lease_until = '', "
                "updated_at = ? WHERE reader = ? AND day = ? AND channel = ? AND state = 'sending'"
                " AND owner = ? AND lease_until <= ?",
                [state, detail, iso_utc(now), row.reader, row.day, row.channel, row.owner,
                 iso_utc(now)])
        return cur.rowcount == 1

    def renew_leases(self, owner: str, now: datetime) -> int:
        """Extend every lease `owner` holds to now + LEASE (its heartbeat)."""
        with self.db.conn:
            cur = self.db.execute(
                "UPDATE deliveries SET lease_until = ? WHERE owner = ? AND state IN "
                "('pending', 'sending')", [iso_utc(now + LEASE), owner])
        return cur.rowcount

    def owners(self) -> list[str]:
        """The runs holding rows now (or that did, their leases not yet lapsed)."""
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT owner FROM deliveries WHERE owner != ''")]

    def lapse(self, owner: str, now: datetime) -> int:
        """End `owner`'s leases now: it is known to be dead (see send.reap_dead_owners)."""
        with self.db.conn:
            cur = self.db.execute("UPDATE deliveries SET lease_until = ? WHERE owner = ? AND "
                                  "lease_until > ?", [iso_utc(now), owner, iso_utc(now)])
        return cur.rowcount

    def release(self, owner: str) -> int:
        """Let go of the rows `owner` claimed and did not get to, so the next run may take them
        at once rather than after the lease. Rows in 'sending' stay held: they lapse."""
        with self.db.conn:
            cur = self.db.execute("UPDATE deliveries SET owner = '', lease_until = '' WHERE "
                                  "owner = ? AND state IN ('pending', 'failed')", [owner])
        return cur.rowcount

    def record_delivery(self, reader: str, day: str, state: str, now: datetime,
                        channel: str = EMAIL, **fields) -> bool:
        """Settle an unowned row that no run holds (the scheduler's "missed" mark). False when
        another run holds or settled it."""
        cols = {"state": state, "updated_at": iso_utc(now), **fields}
        sets = ", ".join(f"{k} = :{k}" for k in cols)
        with self.db.conn:
            self.db.execute("INSERT INTO deliveries (reader, day, channel, state, updated_at) "
                            "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING",
                            [reader, day, channel, iso_utc(now)])
            cur = self.db.execute(
                f"UPDATE deliveries SET {sets} WHERE reader = :reader AND day = :day AND "
                "channel = :channel AND state IN ('pending', 'failed') AND "
                "(owner = '' OR lease_until <= :at)",
                {**cols, "reader": reader, "day": day, "channel": channel, "at": iso_utc(now)})
        return cur.rowcount == 1

    def last_delivered(self) -> dict[str, datetime]:
        """Reader → end of the window of their last digest sent (or maybe sent) or skipped:
        the next one starts there."""
        rows = self.db.execute("SELECT reader, max(window_end) FROM deliveries WHERE state IN "
                               "('sent', 'unconfirmed', 'skipped') AND window_end != '' "
                               "AND channel = 'email' GROUP BY reader")
        return {r: datetime.fromisoformat(t) for r, t in rows}

    def digests_holding(self, entry_ids: list[str], reader: str | None = None
                        ) -> dict[str, list[tuple[str, str]]]:
        """For each entry, the (reader, day) of the delivered digests that held it."""
        out: dict[str, list[tuple[str, str]]] = {i: [] for i in entry_ids}
        if not entry_ids:
            return out
        sql = ("SELECT reader, day, content FROM deliveries WHERE state IN ('sent', "
               "'unconfirmed') AND content != ''" + (" AND reader = ?" if reader else "") +
               " AND (" + " OR ".join("instr(content, ?) > 0" for _ in entry_ids) + ")"
               " ORDER BY day DESC, reader")
        for who, day, content in self.db.execute(
                sql, ([reader] if reader else []) + [json.dumps(i) for i in entry_ids]):
            for i in entry_ids:
                if json.dumps(i) in content and (who, day) not in out[i]:
                    out[i].append((who, day))
        return out
