"""Large arrays sent to PostgreSQL as one text literal ('{1,2,3}') cast to the column's type.

Django binds parameters on the client: psycopg quotes a Python list element by element in
Python, which for the few statements that pass thousands of values at once (a batch's band
keys, a bulk update's columns) costs more than running them. The literal is built with str
joins, and the driver quotes it as one string.
"""

import math

_PLAIN = (int, float, str, type(None))


def array_literal(values: list) -> str | None:
    """PostgreSQL's text form of the array, or None when a value is not an integer, a finite
    float, a string or None (the caller then passes the list as it is)."""
    if all(type(v) is int for v in values):  # keys and ids: the common case
        return "{" + ",".join(map(str, values)) + "}"
    if not all(type(v) in _PLAIN for v in values):  # bool, Decimal, datetime: left to the driver
        return None
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        elif type(value) is str:
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif type(value) is float and not math.isfinite(value):
            return None
        else:
            parts.append(repr(value))
    return "{" + ",".join(parts) + "}"


def array_param(values: list, db_type: str) -> tuple[str, object]:
    """(placeholder, parameter) for the array in SQL: the literal cast to `db_type`[] when it
    can be written, else the list for the driver to quote."""
    literal = array_literal(values)
    return f"%s::{db_type}[]", literal if literal is not None else values
