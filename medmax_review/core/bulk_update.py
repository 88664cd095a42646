"""Many rows of one model updated at once, each with its own values.

Django's bulk_update writes one CASE WHEN per field and row, which costs more to build than to
run; on PostgreSQL one UPDATE ... FROM (VALUES ...) per batch does the same work. Elsewhere
bulk_update stands in.
"""

import json

from django.db import connection, models

from medmax_review.core.pg_arrays import array_param

BATCH_SIZE = 1000


def rows_update(*, objs: list[models.Model], fields: list[str]) -> int:
    """Write `fields` of each saved instance; returns how many rows were matched."""
    if not objs:
        return 0
    model = type(objs[0])
    if connection.vendor != "postgresql":
        return model.objects.bulk_update(objs, fields, batch_size=BATCH_SIZE)
    opts = model._meta
    targets = [opts.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    table, pk = quote(opts.db_table), quote(opts.pk.column)
    # One array per column, unnested into rows: a handful of parameters whatever the batch
    # size, where a VALUES list would have a placeholder per value to parse and bind.
    columns = ", ".join([pk, *(quote(f.column) for f in targets)])
    sets = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in targets)
    matched = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), BATCH_SIZE):
            batch = objs[start : start + BATCH_SIZE]
            arrays = [array_param([obj.pk for obj in batch], opts.pk.db_type(connection))]
            for f in targets:
                arrays.append(array_param([_prepared(f, getattr(obj, f.attname)) for obj in batch],
                                          f.db_type(connection)))
            placeholders = ", ".join(placeholder for placeholder, _ in arrays)
            cursor.execute(
                f"UPDATE {table} AS t SET {sets} FROM unnest({placeholders}) AS v({columns}) "
                f"WHERE t.{pk} = v.{pk}", [param for _, param in arrays])
            matched += cursor.rowcount
    return matched


def _prepared(field: models.Field, value):
    if isinstance(field, models.JSONField):
        return None if value is None else json.dumps(value, cls=field.encoder)
    return field.get_db_prep_save(value, connection)
