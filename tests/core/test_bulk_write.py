import json
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from medmax_review.core.bulk_write import _json_writer


def test_a_json_field_with_its_own_encoder_is_written_by_that_encoder():
    # Given a JSON column whose field names an encoder (Decimal is not JSON on its own)
    dumps = _json_writer(models.JSONField(encoder=DjangoJSONEncoder))

    # Then COPY's text is that encoder's
    assert json.loads(dumps({"dose": Decimal("2.5")})) == {"dose": "2.5"}


def test_json_columns_without_an_encoder_keep_what_orjson_cannot_write():
    dumps = _json_writer(models.JSONField())

    assert json.loads(dumps({"big": 2**70, 1: "one"})) == {"big": 2**70, "1": "one"}
    assert _json_writer(models.CharField()) is None
