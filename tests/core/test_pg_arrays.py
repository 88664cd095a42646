"""Array literals read back by PostgreSQL as the values they were built from."""

import datetime as dt
import json

import pytest
from django.db import connection

from medmax_review.core.pg_arrays import array_literal, array_param
from medmax_review.sources.models import ImageAsset

pytestmark = pytest.mark.django_db

AWKWARD = ['say "hi"', "back\\slash", "{braces,comma}", "NULL", "", "é ü 中", " padded ", None,
           "it's", "tab\tand\nnewline"]


def _read_back(values, db_type):
    placeholder, param = array_param(values, db_type)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {placeholder}", [param])
        return cursor.fetchone()[0]


@pytest.mark.parametrize(("values", "db_type"), [
    (AWKWARD, "text"),
    ([1, -2, 2**62, None], "bigint"),
    ([0.1, 1e-300, -3.0, None], "double precision"),
    (['{"a": "q\\"x"}', "[1, 2.5]", None], "jsonb"),
    ([], "bigint"),
])
def test_values_come_back_as_they_went_in(values, db_type):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL arrays")
    back = _read_back(values, db_type)
    if db_type == "jsonb":  # read as text, in PostgreSQL's own spelling
        values, back = ([None if v is None else json.loads(v) for v in side] for side in (values, back))
    assert back == values


def test_values_it_cannot_spell_are_left_to_the_driver():
    # Booleans, infinities and datetimes have text forms of their own: the list goes as it is.
    for values in ([True, False], [float("inf")], [dt.date(2026, 1, 1)]):
        assert array_literal(values) is None
        assert array_param(values, "text") == ("%s::text[]", values)


def test_in_array_lookup_finds_text_with_quotes_and_backslashes():
    names = ['a"b.png', "c\\d.png", "plain.png"]
    for i, name in enumerate(names):
        ImageAsset.objects.create(sha256=f"{i:064x}", file=name, format="png", width=1,
                                  height=1, size_bytes=1)
    found = ImageAsset.objects.filter(file__in_array=names[:2] + ["absent"])
    assert sorted(found.values_list("file", flat=True)) == sorted(names[:2])
