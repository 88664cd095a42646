"""A setting for a few statements is put back to what it was, not to the server's default."""

from django.db import connection

from medmax_review.core.pg_settings import setting_for_statements


def _show(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_the_setting_holds_inside_the_block_and_is_put_back_after(db):
    if connection.vendor != "postgresql":
        return  # a PostgreSQL setting
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '8MB'")  # the caller's own, not the default

    with setting_for_statements("work_mem", "16MB"):
        inside = _show("work_mem")

    assert (inside, _show("work_mem")) == ("16MB", "8MB")
