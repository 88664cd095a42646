"""rows_update writes each row's own values (JSON, floats, NULL) in one statement per batch."""

from medmax_review.core import bulk_update
from medmax_review.core.bulk_update import rows_update
from medmax_review.review.models import Candidate
from tests.review.review_fixtures import candidates_make, image  # noqa: F401


def test_each_row_gets_its_own_values(project, image, monkeypatch,  # noqa: F811
                                     django_assert_max_num_queries):
    monkeypatch.setattr(bulk_update, "BATCH_SIZE", 3)
    candidates = candidates_make(project, 7, image=image)
    for i, c in enumerate(candidates):
        c.scores = {"format": {"value": i / 10, "band": "good", "evidence": [{"text": f"é'\"{i}"}]}}
        c.priority = i * 0.5
        c.reject_risk = None if i % 2 else i / 7
    with django_assert_max_num_queries(3):  # 7 rows in batches of 3
        assert rows_update(objs=candidates, fields=["scores", "priority", "reject_risk"]) == 7
    for i, c in enumerate(Candidate.objects.filter(pk__in=[c.pk for c in candidates]).order_by("id")):
        assert c.scores["format"]["evidence"][0]["text"] == f"é'\"{i}"
        assert c.priority == i * 0.5
        assert c.reject_risk == (None if i % 2 else i / 7)
    assert rows_update(objs=[], fields=["priority"]) == 0
