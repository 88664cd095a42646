"""The review screen renders whatever a candidate's provenance holds.

Provenance is free-form JSON: generation writes backend, model and parameters, the MedMax
importer only the file and line a row came from, and older or hand-made rows anything at all.
"""

import pytest
from django.urls import reverse

from medmax_review.review import claims, services
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.review.models import APPROVED
from medmax_review.sources.models import SourceRecord
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

RESPONSE = "No acute cardiopulmonary process."
KINDS = {
    # kind: (provenance, what the candidate header names as its author)
    "medmax_import": ({"import_file": "medmax_train.jsonl", "line": 7}, "imported"),
    "template": ({"backend": "template", "template_ref": "vqa/default@v1"}, "template"),
    "model": ({"backend": "openai", "model": "gpt-4o-mini", "parameters": {"temperature": 0.2}},
              "gpt-4o-mini"),
    "not_an_object": (["hand", "made"], "imported"),
    "odd_values": ({"model": None, "backend": 3}, "imported"),
}


def candidate_with(project, provenance):
    record = SourceRecord.objects.create(
        project=project, source="mimic_cxr", external_id="row-7", report="Lungs are clear.",
    )
    (candidate,) = candidates_create(project=project, specs=[CandidateSpec(
        record_id=record.pk, task="report_understanding", instruction="Write the report.",
        response=RESPONSE, image_position="none", provenance=provenance,
    )])
    return candidate


def page(client, user, project, candidate):
    assert client.login(username=user.username, password=PASSWORD)
    return client.get(reverse("review_candidate", args=[project.slug, candidate.pk]))


@pytest.mark.parametrize("kind", KINDS)
def test_review_screen_renders_for_any_provenance(client, project, reviewer, kind):
    provenance, author = KINDS[kind]
    candidate_with(project, provenance)
    # Through the queue, as a reviewer meets it: the redirect and the page it leads to.
    assert client.login(username=reviewer.username, password=PASSWORD)
    response = client.get(reverse("review_next", args=[project.slug]), follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    assert RESPONSE in body and f"· {author} ·" in body
    assert 'data-key="a"' in body  # the reviewer holds the claim: the actions are offered


def test_review_screen_renders_a_candidate_an_admin_edited(client, project, admin_user, reviewer):
    provenance, _ = KINDS["medmax_import"]
    candidate = candidate_with(project, provenance)
    claims.claim_next(project=project, user=admin_user)
    services.decision_record(
        candidate_id=candidate.pk, user=admin_user, action="edit", version=candidate.version,
        instruction=candidate.instruction, response="Edited: no acute process.",
    )
    candidate.refresh_from_db()
    assert candidate.status == APPROVED and candidate.edited
    response = page(client, reviewer, project, candidate)
    assert response.status_code == 200
    assert "Edited: no acute process." in response.content.decode()
    assert "Read only" in response.content.decode()
