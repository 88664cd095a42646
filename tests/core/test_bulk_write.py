import json
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from medmax_review.core.bulk_write import _json_writer, objects_insert, rows_add, rows_insert
from medmax_review.sources.models import ImageAsset


def test_a_json_field_with_its_own_encoder_is_written_by_that_encoder():
    # Given a JSON column whose field names an encoder (Decimal is not JSON on its own)
    dumps = _json_writer(models.JSONField(encoder=DjangoJSONEncoder))

    # Then COPY's text is that encoder's
    assert json.loads(dumps({"dose": Decimal("2.5")})) == {"dose": "2.5"}


def test_json_columns_without_an_encoder_keep_what_orjson_cannot_write():
    dumps = _json_writer(models.JSONField())

    assert json.loads(dumps({"big": 2**70, 1: "one"})) == {"big": 2**70, "1": "one"}
    assert _json_writer(models.CharField()) is None


def _asset(i: int) -> dict:
    return {"sha256": f"{i:064x}", "file": f"images/{i}.png", "format": "png", "width": 8,
            "height": 8, "size_bytes": 100 + i}


def test_objects_insert_returns_the_rows_as_they_were_written(db):
    # Given rows that leave out a JSON field (a fresh dict each) and the creation time
    rows = [_asset(i) for i in range(3)]

    # When they are inserted as objects
    objs = objects_insert(model=ImageAsset, rows=rows)

    # Then each object is what the database holds, saved, and its default is its own
    stored = {a.pk: a for a in ImageAsset.objects.all()}
    assert [o.pk for o in objs] == sorted(stored)
    for obj in objs:
        kept = stored[obj.pk]
        assert not obj._state.adding
        assert (obj.sha256, obj.size_bytes, obj.dicom, obj.created_at) == (
            kept.sha256, kept.size_bytes, kept.dicom, kept.created_at)
    assert objs[0].dicom is not objs[1].dicom
    assert objects_insert(model=ImageAsset, rows=[]) == []


def test_rows_add_lets_the_database_number_the_rows(db):
    first = rows_insert(model=ImageAsset, rows=[_asset(0)])

    rows_add(model=ImageAsset, rows=[_asset(1), _asset(2)])
    rows_add(model=ImageAsset, rows=[])

    numbered = list(ImageAsset.objects.order_by("pk").values_list("pk", "sha256", "dicom"))
    assert [sha for _, sha, _ in numbered] == [f"{i:064x}" for i in range(3)]
    assert numbered[0][0] == first[0] and numbered[1][0] > first[0]
    assert all(dicom == {} for _, _, dicom in numbered)


def test_objects_insert_refuses_a_field_named_other_than_by_attname(db):
    with pytest.raises(ValueError, match="not attnames of ImageAsset: \\['colour'\\]"):
        objects_insert(model=ImageAsset, rows=[{**_asset(0), "colour": "red"}])
    assert not ImageAsset.objects.exists()
