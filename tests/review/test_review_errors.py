"""A refused review form says what is wrong in words a clinician reads, never in field codes."""

import pytest
from django.urls import reverse

from medmax_review.review import claims
from medmax_review.review.models import REJECT_REASONS, Decision
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
CODES = [key for key, _ in REJECT_REASONS if "_" in key] + ["reason:", "response:", "version:"]


@pytest.mark.parametrize("form, words", [
    ({"action": "reject", "version": "1"}, "Choose a reason for the rejection: hallucination, wrong laterality"),
    ({"action": "edit", "version": "1", "response": "  "}, "The edited response is empty"),
    ({"action": "approve"}, "reload the page"),
    ({"action": "sign", "version": "1"}, "That is not a review action"),
])
def test_refused_decision_speaks_words(client, project, reviewer, make_candidates, form, words):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    assert client.login(username=reviewer.username, password=PASSWORD)
    response = client.post(reverse("review_decide", args=[project.slug, c.pk]), form, **HX)
    text = response.content.decode()
    assert response.status_code == 400 and words in text, text
    assert not [code for code in CODES if code in text], text
    assert not Decision.objects.exists()
