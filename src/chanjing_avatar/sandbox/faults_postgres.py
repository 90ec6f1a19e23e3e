"""Fault rules in PostgreSQL, shared by every API replica of a deployment.

The rule of picking is ``faults.choose``, as in one process; what differs is where a firing is
counted: one conditional UPDATE per firing, so a rule for ``times=1`` fires once across all the
replicas, and a sequence's items are taken in order whichever replica takes the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import psycopg_pool
from psycopg.types.json import Jsonb

from .faults import Fault, FaultInjector, FaultRule, choose
from .store import BackendUnavailable

_WAIT_S = 5.0


class SharedFaults(FaultInjector):
    blocking = True

    def __init__(self, url: str, *, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=10,  # as the store's: every request asks (admin API on)
            kwargs={"connect_timeout": int(_WAIT_S), "autocommit": True},
            timeout=_WAIT_S,
            open=False,
            name="sandbox-faults",
        )
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._pool.connection(timeout=_WAIT_S) as conn:
                cursor = conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as err:
            raise BackendUnavailable(f"PostgreSQL: {type(err).__name__}") from None

    def _live(self) -> tuple[list[int], list[FaultRule]]:
        rows = self._run("SELECT id, rule, fired FROM sandbox_faults ORDER BY id")
        ids, rules = [], []
        for row_id, rule_json, fired in rows:
            rule = FaultRule.parse(rule_json)
            rule.fired = fired
            if rule.sequence is not None:
                rule.sequence = rule.sequence[fired:]  # what is left to take
            ids.append(row_id)
            rules.append(rule)
        return ids, rules

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        rows = [(Jsonb(r.to_json()), _limit(r)) for r in rules]
        try:
            with self._pool.connection(timeout=_WAIT_S) as conn, conn.transaction():
                conn.execute("DELETE FROM sandbox_faults")
                conn.cursor().executemany(
                    "INSERT INTO sandbox_faults (rule, times) VALUES (%s, %s)", rows
                )
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as err:
            raise BackendUnavailable(f"PostgreSQL: {type(err).__name__}") from None

    def add(self, rule: FaultRule) -> None:
        self._run(
            "INSERT INTO sandbox_faults (rule, times) VALUES (%s, %s)",
            (Jsonb(rule.to_json()), _limit(rule)),
        )

    def rules(self) -> list[dict[str, Any]]:
        return [rule.to_json() for rule in self._live()[1]]

    def pick(self, endpoint: str) -> Fault | None:
        ids, rules = self._live()

        def take(index: int, rule: FaultRule) -> tuple[bool, Fault | None]:
            rows = self._run(
                "UPDATE sandbox_faults SET fired = fired + 1"
                " WHERE id = %s AND (times IS NULL OR fired < times) RETURNING fired",
                (ids[index],),
            )
            if not rows:
                return False, None
            if rule.sequence is None:
                return True, None
            return True, rule.sequence[rows[0][0] - 1 - rule.fired]

        return choose(rules, endpoint, self._rng, take)


def _limit(rule: FaultRule) -> int | None:
    return len(rule.sequence) if rule.sequence is not None else rule.times
