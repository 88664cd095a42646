"""An import looks its batch's records up by (source, external_id): exact pairs, one index probe
each, even when the planner's statistics still describe the project as it was before the
import grew it."""

from django.db import connection
from django.utils import timezone

from medmax_review.core.bulk_write import rows_insert
from medmax_review.projects import services as project_services
from medmax_review.sources import selectors
from medmax_review.sources.models import SourceRecord


def _records(project, source: str, ids) -> list[int]:
    now = timezone.now()
    return rows_insert(model=SourceRecord, rows=[
        {"project_id": project.pk, "source": source, "external_id": str(e), "license": "CC0-1.0",
         "credential": "yes" if str(e).endswith("7") else "no", "modality": "", "language": "",
         "caption": "c", "inline_mention": "", "question": "", "answer": "", "report": "",
         "meta": {}, "image_id": None, "import_run_id": None, "created_at": now}
        for e in ids
    ])


def test_records_by_key_returns_the_exact_pairs_with_id_and_credential(project):
    a, b = _records(project, "vqa_rad", ["1", "7"])
    [c] = _records(project, "slake", ["2"])

    found = selectors.records_by_key(project_id=project.pk, keys=[
        ("vqa_rad", "1"), ("vqa_rad", "2"), ("slake", "7"), ("slake", "2"), ("vqa_rad", "7"),
        ("vqa_rad", "0"), ("zzz", "9"),  # before a record's key, after every key
    ])

    # (vqa_rad, 2) and (slake, 7) cross the sources and ids asked for but are no record's key
    assert found == {("vqa_rad", "1"): (a, "no"), ("vqa_rad", "7"): (b, "yes"),
                     ("slake", "2"): (c, "no")}
    assert selectors.records_by_key(project_id=project.pk, keys=[]) == {}


def test_records_by_key_probes_the_unique_index_when_statistics_lag(project):
    if connection.vendor != "postgresql":
        return  # SQLite has one plan for it
    # Given statistics taken while the project had one record among another project's many
    other, _ = project_services.project_get_or_create(slug="other", name="Other")
    _records(other, "vqa_rad", range(3000))
    _records(project, "vqa_rad", ["seed"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sources_sourcerecord")
    # ... and an import that has since added thousands more
    _records(project, "vqa_rad", range(20000))
    keys = [("vqa_rad", str(i)) for i in range(19000, 19500)] + [("vqa_rad", "19000x")]

    plans = []

    def explained(execute, sql, params, many, context):
        if "unnest" in sql:  # the lookup itself, run again under EXPLAIN in the same state
            execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params, many, context)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explained):
        found = selectors.records_by_key(project_id=project.pk, keys=keys)
    [plan] = plans

    # Then each key is one descent of the unique index, no scan of the project's records
    assert "Index Scan using record_unique_external_id" in plan, plan
    assert "record_filter_idx" not in plan and "Seq Scan" not in plan, plan
    # ... and the query's setting does not outlast it
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_sort")
        assert cursor.fetchone() == ("on",)
    assert len(found) == 500 and ("vqa_rad", "19000x") not in found
