"""A PostgreSQL setting changed for a few statements and then put back.

`SET LOCAL` alone lasts until the transaction ends, and the caller's transaction (an import's
batch) runs other statements after the one the setting is for.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def setting_for_statements(name: str, value: str) -> Iterator[None]:
    """Inside the block, `name` is `value` on this connection (in a transaction begun if none is
    open); afterwards it is what it was."""
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
        [(before, _)] = cursor.fetchall()
        yield
        cursor.execute("SELECT set_config(%s, %s, true)", [name, before])
