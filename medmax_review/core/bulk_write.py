"""Many new rows of one model at once: COPY on PostgreSQL, batched INSERTs elsewhere.

Rows come as {field name or attname: value}; fields left out take their default (and
auto_now_add fields the time of the write). The caller removes rows that would break a unique
constraint first; one that slips through (a concurrent writer) raises IntegrityError, as an
INSERT would, and nothing of the call is kept.
"""

import json
import operator

import orjson
from django.db import connection, models
from django.db.models.lookups import In
from django.utils import timezone

from medmax_review.core.pg_arrays import array_param

BATCH_SIZE = 500  # rows per INSERT where there is no COPY


class InArray(In):
    """`field__in_array=values`: IN, sent to PostgreSQL as one array (`= ANY(%s)`) rather than a
    placeholder per value, which the driver would parse again in every query of a batch's
    thousands of keys."""

    lookup_name = "in_array"

    def get_prep_lookup(self):
        # A batch's keys come as plain text or integers already; preparing each of thousands
        # as Django does costs more than the query. Anything else is prepared as usual.
        if not hasattr(self.rhs, "resolve_expression"):
            self.rhs = list(self.rhs)
            plain = str if isinstance(self.lhs.output_field, models.CharField) else int
            if all(type(value) is plain for value in self.rhs):
                return self.rhs
        return super().get_prep_lookup()

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        # Compared as text for text columns: varchar = text uses the same index.
        db_type = "text" if isinstance(self.lhs.output_field, models.CharField) else "bigint"
        placeholder, param = array_param(values, db_type)
        return f"{lhs} = ANY({placeholder})", (*lhs_params, param)


# Text and integer keys; a relation's own lookups stay as Django defines them.
models.CharField.register_lookup(InArray)
models.IntegerField.register_lookup(InArray)


def _fields(model) -> list[models.Field]:
    # A generated column is computed by the database and cannot be written.
    return [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]


def rows_insert(*, model, rows: list[dict]) -> list[int]:
    """Insert the rows; returns their new primary keys, in order."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        return _copy(model, rows)
    objs = [model(**row) for row in rows]
    model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
    return [obj.pk for obj in objs]


def rows_add(*, model, rows: list[dict]) -> None:
    """Insert rows whose new keys nobody reads (history, decisions): the database numbers
    them as COPY writes, which saves taking the keys first."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _copy(model, rows, numbered=False)
    else:
        model.objects.bulk_create([model(**row) for row in rows], batch_size=BATCH_SIZE)


def _json_text(value) -> str:
    """A JSON column's value as the text COPY reads: orjson, or json for what orjson refuses
    (an integer past 64 bits, a key that is not text), so no value is written differently."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _json_writer(field: models.Field):
    """value -> text for a JSON column, None for any other: a field's own encoder is kept."""
    if not isinstance(field, models.JSONField):
        return None
    if field.encoder is None:
        return _json_text
    return lambda value, encoder=field.encoder: json.dumps(value, cls=encoder)


def _reader(field: models.Field, now):
    """row -> the value COPY writes for `field`: the row's value by attname or by name (a
    related object by its key), else the field's default (the time of the write for auto_now
    fields); a function made once per field, not worked out again for every row."""
    attname, name = field.attname, field.name
    foreign = isinstance(field, models.ForeignKey)
    default = _default(field, now)
    # JSON columns take the text COPY reads; every other value psycopg writes as it is.
    dumps = _json_writer(field)

    def read(row: dict):
        if attname in row:
            value = row[attname]
        elif name in row:
            value = row[name]
            if foreign and value is not None:
                value = value.pk
        else:
            value = default()
        return dumps(value) if dumps is not None else value

    return read


def _default(field: models.Field, now):
    stamped = getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False)
    return (lambda: now) if stamped else field.get_default


class _Plan:
    """The COPY's columns and how each row becomes their values. Rows of one call nearly always
    share their keys: those of the first row are taken by one itemgetter, the defaults of the
    fields it leaves out are filled in after, and only a row with other keys is read field by
    field (the columns stay in the same order)."""

    def __init__(self, fields: list[models.Field], first: dict, now):
        def given(f):
            if f.attname in first:
                return f.attname
            # A related object given by name is read by the general path (its key is needed).
            return f.name if f.name in first and not isinstance(f, models.ForeignKey) else None

        keyed = [(f, given(f)) for f in fields]
        present = [(f, key) for f, key in keyed if key is not None]
        absent = [f for f, key in keyed if key is None]
        self.fields = [f for f, _ in present] + absent
        self.keys = first.keys()
        self.getter = operator.itemgetter(*[key for _, key in present]) if present else None
        self.single = len(present) == 1
        # The absent fields' defaults: a constant is worked out once, a callable for each row.
        self.tail = [None if _made_per_row(f) else _default(f, now)() for f in absent]
        self.made = [(len(present) + 1 + i, _default(f, now))
                     for i, f in enumerate(absent) if _made_per_row(f)]
        self.json = [(i + 1, dumps) for i, f in enumerate(self.fields)
                     if (dumps := _json_writer(f)) is not None]
        self.readers = [_reader(f, now) for f in self.fields]

    def values(self, pk: int, row: dict) -> list:
        if row.keys() != self.keys:
            return [pk, *[read(row) for read in self.readers]]
        got = self.getter(row) if self.getter is not None else ()
        values = [pk, got] if self.single else [pk, *got]
        values += self.tail
        for i, make in self.made:
            values[i] = make()
        for i, dumps in self.json:
            values[i] = dumps(values[i])
        return values


def _made_per_row(field: models.Field) -> bool:
    return callable(field.default) or getattr(field, "auto_now_add", False) or getattr(
        field, "auto_now", False)


def _copy(model, rows: list[dict], *, numbered: bool = True) -> list[int]:
    plan = _Plan(_fields(model), rows[0], timezone.now())
    table = connection.ops.quote_name(model._meta.db_table)
    columns = [f.column for f in plan.fields]
    with connection.wrap_database_errors, connection.cursor() as cursor:
        if not numbered:
            with cursor.copy(f"COPY {table} ({_columns(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(plan.values(None, row)[1:])
            return []
        # The keys are taken up front, so the rows are written with COPY and still known by id.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        columns.insert(0, model._meta.pk.column)
        with cursor.copy(f"COPY {table} ({_columns(columns)}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                copy.write_row(plan.values(pk, row))
    return ids


def _columns(names: list[str]) -> str:
    return ", ".join(connection.ops.quote_name(c) for c in names)


def objects_insert(*, model, rows: list[dict]) -> list[models.Model]:
    """Insert the rows (as rows_insert) and return them as instances, each with its primary
    key, its defaults and its auto_now timestamps, as bulk_create's would have. Instances are
    built from their values in field order, Django's own path for rows it reads: from keywords
    they cost three times as much, and an import makes one per row. Rows name fields by
    attname (`record_id`, not `record`)."""
    if not rows:
        return []
    if unknown := rows[0].keys() - {f.attname for f in model._meta.concrete_fields}:
        raise ValueError(f"objects_insert: not attnames of {model.__name__}: {sorted(unknown)}")
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
        return objs
    now = timezone.now()
    # Values the instance must share with the row written: the time of the write, and every
    # default made afresh for each row.
    made = [(f.attname, _default(f, now)) for f in _fields(model)
            if f.attname not in rows[0] and _made_per_row(f)]
    if made:
        rows = [{**row, **{name: make() for name, make in made if name not in row}} for row in rows]
    ids = rows_insert(model=model, rows=rows)
    pk = model._meta.pk.attname
    fields = [(f.attname, f.get_default) for f in model._meta.concrete_fields]
    objs = []
    for key, row in zip(ids, rows, strict=True):
        obj = model(*[key if name == pk else row[name] if name in row else default()
                      for name, default in fields])
        obj._state.adding, obj._state.db = False, connection.alias
        objs.append(obj)
    return objs
