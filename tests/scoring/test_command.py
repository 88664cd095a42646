"""The `score` management command."""

import io

import pytest
from django.core.management import CommandError, call_command

from medmax_review.review.models import Candidate

pytestmark = pytest.mark.django_db


def test_score_command_wait_scores_only_missing(project, demo_rows, make_record, make_candidate):
    record = make_record(demo_rows["vqarad-1582"])
    first = make_candidate(record, response="Right")
    second = make_candidate(record, response="Left", sample_index=1)
    out = io.StringIO()

    call_command("score", project=project.slug, wait=True, stdout=out)
    assert "2 candidate(s) to score" in out.getvalue() and "scored 2/2" in out.getvalue()
    assert Candidate.objects.get(pk=second.pk).scores["consistency"]["band"] == "fail"

    third = make_candidate(record, response="Right lung", sample_index=2)
    out = io.StringIO()
    call_command("score", project=project.slug, wait=True, only_missing=True, stdout=out)
    assert "1 candidate(s) to score" in out.getvalue()
    assert Candidate.objects.get(pk=third.pk).scores
    assert Candidate.objects.get(pk=first.pk).scores["consistency"]["band"] == "good"


def test_score_command_unknown_project_is_an_error(db):
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call_command("score", project="nope", wait=True)
