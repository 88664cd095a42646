"""Fails loudly when the test suite's PostgreSQL or Redis cannot be reached."""

import sys

import psycopg
import redis


def main(database_url: str, broker_url: str) -> int:
    problems = []
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin_url, connect_timeout=5) as conn:
            conn.execute("select 1")
    except Exception as exc:  # noqa: BLE001 - any failure is reported the same way
        problems.append(f"PostgreSQL at {admin_url}: {exc}")
    try:
        redis.Redis.from_url(broker_url, socket_connect_timeout=5).ping()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"Redis at {broker_url}: {exc}")
    for problem in problems:
        print(f"cannot reach {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
