"""Done when: a clinician reviews a MedMax-imported batch end to end, by keyboard only, in the dark
theme, with no server error, and axe-core finds nothing serious on the way."""

import pytest

from medmax_review.review.models import PENDING, Candidate, Decision
from medmax_review.scoring.services import candidates_score
from medmax_review.sources.services import records_import
from tests.e2e.a11y import axe_serious, contrast
from tests.sources.real_datasets import medmax_rows

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# A decision for the i-th candidate shown, by keys only; every kind of decision comes up.
PLAN = ("a", "edit", "reject", "a", "s", "a", "f")


def test_medmax_batch_reviewed_by_keyboard_in_the_dark(open_tab, project, tmp_path):
    from medmax_review.projects import services as project_services
    from medmax_review.projects.models import REVIEWER
    from tests.conftest import PASSWORD

    path, rows = medmax_rows(tmp_path)
    report = records_import(project=project, path=path)  # not --approved: all for review
    clinician = project_services.user_create(username="dr_night", password=PASSWORD, credentialed=True)
    project_services.membership_set(project=project, user=clinician, role=REVIEWER)
    candidates = Candidate.objects.filter(project=project)
    assert candidates.count() == len(rows) and not candidates.exclude(status=PENDING).exists(), report
    # What the scoring worker does after an import.
    candidates_score(candidate_ids=list(candidates.values_list("id", flat=True)))

    tab = open_tab(color_scheme="dark", bypass_csp=True)
    page = tab.page
    server_errors = []
    page.on("response", lambda r: server_errors.append(r.url) if r.status >= 500 else None)
    tab.login(clinician)
    tab.goto(f"/p/{project.slug}/review/")
    page.wait_for_selector("#review-pane[data-ready='1']")
    assert contrast(page, ".side")["bgLuminance"] < 0.05
    # MedMax rows carry no source text: grounding had nothing to check and says so.
    grounding = page.locator("details[data-score=grounding]")
    assert grounding.locator(".band").inner_text() == "n/a"
    grounding.locator("summary").click()
    assert "no source text" in grounding.inner_text()
    assert axe_serious(page) == []

    seen = []
    while page.locator("#review-pane[data-candidate='']").count() == 0:
        current = page.get_attribute("#review-pane", "data-candidate")
        assert current not in seen, f"candidate {current} came back"
        seen.append(current)
        step = PLAN[(len(seen) - 1) % len(PLAN)]
        if step == "edit":
            page.keyboard.press("e")
            page.keyboard.press("End")
            page.keyboard.type(" Reviewed.")
            page.keyboard.press("Control+Enter")
        elif step == "reject":
            page.keyboard.press("r")
            page.keyboard.press("8")  # formatting
            page.keyboard.press("Enter")
        else:
            page.keyboard.press(step)
        # The next candidate (or the empty queue) arrives with focus on its first action.
        page.wait_for_function(
            "seen => { const p = document.querySelector('#review-pane');"
            " return p && p.dataset.ready === '1' && !seen.includes(p.dataset.candidate); }",
            arg=seen,
        )
        page.wait_for_function("() => document.activeElement.closest('.action-bar, .empty-queue')")
        if len(seen) == 3:
            tab.shot("review-medmax-dark")
            assert axe_serious(page) == []

    # Every candidate was shown once; a skipped one stays in the queue for the others.
    assert len(seen) == len(rows)
    assert server_errors == []
    skipped = Decision.objects.filter(reviewer=clinician, action="skip").count()
    decided = Decision.objects.filter(reviewer=clinician).exclude(action="skip")
    assert decided.count() == len(rows) - skipped
    assert set(decided.values_list("action", flat=True)) == {"approve", "edit", "reject", "flag"}
    assert candidates.filter(status=PENDING).count() == skipped
    assert page.inner_text("h1") == "Nothing left for you to review"
    assert axe_serious(page) == []
