"""The filter choices' distinct (source, licence) pairs, read by skipping through the index."""

from django.db import connection

from medmax_review.projects.models import Project
from medmax_review.sources import selectors
from medmax_review.sources.models import SourceRecord
from medmax_review.sources.selectors import record_source_licences


def _records(project, pairs):
    SourceRecord.objects.bulk_create([
        SourceRecord(project=project, source=source, license=lic, external_id=f"{source}-{i}")
        for i, (source, lic) in enumerate(pairs)
    ])


def test_pairs_are_distinct_sorted_and_of_this_project_only(project):
    other = Project.objects.create(slug="other", name="other")
    _records(project, [("vqa_rad", "CC0-1.0")] * 5 + [("slake", "CC-BY-4.0")] * 3
             + [("slake", "")] + [("mimic", "PhysioNet-Credentialed-1.5.0")] * 2)
    _records(other, [("zzz", "MIT")])
    assert record_source_licences(project=project) == [
        ("mimic", "PhysioNet-Credentialed-1.5.0"), ("slake", ""), ("slake", "CC-BY-4.0"),
        ("vqa_rad", "CC0-1.0")]
    assert record_source_licences(project=other) == [("zzz", "MIT")]


def test_the_skip_scan_walks_the_filter_index(project):
    if connection.vendor != "postgresql":
        return  # SQLite reads the plain DISTINCT; its projects are small
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + selectors._PAIRS_SQL, {"p": project.pk})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Recursive Union" in plan and "record_filter_idx" in plan, plan
