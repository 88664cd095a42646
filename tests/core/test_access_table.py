"""The access table: every URL of the app, for every actor, with the outcome written down; and
a credentialed record's text never in a response to a user without credentialed access.

A URL added without a row here fails test_every_url_has_a_row.
"""

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.core.access_world import ACTORS, MARKER, build_world

# case: (URL name, kwargs; a string value names an id of the world)
CASES = {
    "home": ("home", {}),
    "login": ("login", {}),
    "logout": ("logout", {}),
    "project_dashboard": ("project_dashboard", {"slug": "slug"}),
    "project_settings": ("project_settings", {"slug": "slug"}),
    "project_members": ("project_members", {"slug": "slug"}),
    "project_member_role": ("project_member_role", {"slug": "slug", "user_id": "member"}),
    "project_member_remove": ("project_member_remove", {"slug": "slug", "user_id": "member"}),
    "import_upload": ("import_upload", {"slug": "slug"}),
    "import_run": ("import_run", {"slug": "slug", "run_id": "run_id"}),
    "generation_jobs": ("generation_jobs", {"slug": "slug"}),
    "generation_job": ("generation_job", {"slug": "slug", "job_id": "job_id"}),
    "generation_job_cancel": ("generation_job_cancel", {"slug": "slug", "job_id": "job_id"}),
    "generation_job_resume": ("generation_job_resume", {"slug": "slug", "job_id": "job_id"}),
    "generation_job_retry": ("generation_job_retry", {"slug": "slug", "job_id": "job_id"}),
    "generation_templates": ("generation_templates", {"slug": "slug"}),
    "review_next": ("review_next", {"slug": "slug"}),
    "review_undo": ("review_undo", {"slug": "slug"}),
    "reviews_required_confirm": ("reviews_required_confirm", {"slug": "slug"}),
    "adjudication_queue": ("adjudication_queue", {"slug": "slug"}),
    "adjudication_candidate open": ("adjudication_candidate", {"slug": "slug", "candidate_id": "open_candidate"}),
    "adjudication_candidate credentialed": ("adjudication_candidate", {"slug": "slug", "candidate_id": "secret_candidate"}),
    "review_candidate open": ("review_candidate", {"slug": "slug", "candidate_id": "open_candidate"}),
    "review_candidate credentialed": ("review_candidate", {"slug": "slug", "candidate_id": "secret_candidate"}),
    "review_decide": ("review_decide", {"slug": "slug", "candidate_id": "open_candidate"}),
    "review_draft": ("review_draft", {"slug": "slug", "candidate_id": "open_candidate"}),
    "review_overturn": ("review_overturn", {"slug": "slug", "candidate_id": "open_candidate"}),
    "candidate_browse": ("candidate_browse", {"slug": "slug"}),
    "candidate_history open": ("candidate_history", {"slug": "slug", "candidate_id": "open_candidate"}),
    "candidate_history credentialed": ("candidate_history", {"slug": "slug", "candidate_id": "secret_approved"}),
    "candidate_bulk": ("candidate_bulk", {"slug": "slug"}),
    "candidate_regenerate": ("candidate_regenerate", {"slug": "slug"}),
    "project_stats": ("project_stats", {"slug": "slug"}),
    "rejection_analytics": ("rejection_analytics", {"slug": "slug"}),
    "rejection_analytics_csv": ("rejection_analytics_csv", {"slug": "slug"}),
    "export_list": ("export_list", {"slug": "slug"}),
    "export_detail": ("export_detail", {"slug": "slug", "number": "number"}),
    "export_retry": ("export_retry", {"slug": "slug", "number": "number"}),
    "export_download credentialed": ("export_download", {"slug": "slug", "number": "number"}),
    "evaluation_list": ("evaluation_list", {"slug": "slug"}),
    "evaluation_detail": ("evaluation_detail", {"slug": "slug", "run_id": "evaluation"}),
    "image_file open": ("image_file", {"sha256": "open_image"}),
    "image_file credentialed": ("image_file", {"sha256": "secret_image"}),
}

# Outcomes of a GET, per actor: anonymous, outsider (a user of another project),
# reviewer, adjudicator, admin, then the same three roles with credentialed access.
EXPECTED = {
    #                                       A    O    R    J    D    R+c  J+c  D+c
    "home":                                  [302, 200, 200, 200, 200, 200, 200, 200],
    "login":                                 [200, 200, 200, 200, 200, 200, 200, 200],
    "logout":                                [405, 405, 405, 405, 405, 405, 405, 405],
    "project_dashboard":                     [302, 404, 200, 200, 200, 200, 200, 200],
    "project_settings":                      [302, 404, 403, 403, 200, 403, 403, 200],
    "project_members":                       [302, 404, 403, 403, 200, 403, 403, 200],
    "project_member_role":                   [302, 405, 405, 405, 405, 405, 405, 405],
    "project_member_remove":                 [302, 405, 405, 405, 405, 405, 405, 405],
    "import_upload":                         [302, 404, 403, 403, 200, 403, 403, 200],
    "import_run":                            [302, 404, 403, 403, 200, 403, 403, 200],
    "generation_jobs":                       [302, 404, 403, 403, 200, 403, 403, 200],
    "generation_job":                        [302, 404, 403, 403, 200, 403, 403, 200],
    "generation_job_cancel":                 [302, 405, 405, 405, 405, 405, 405, 405],
    "generation_job_resume":                 [302, 405, 405, 405, 405, 405, 405, 405],
    "generation_job_retry":                  [302, 405, 405, 405, 405, 405, 405, 405],
    "generation_templates":                  [302, 404, 403, 403, 200, 403, 403, 200],
    "review_next":                           [302, 404, 302, 200, 200, 302, 200, 200],
    "review_undo":                           [302, 405, 405, 405, 405, 405, 405, 405],
    "reviews_required_confirm":              [302, 404, 403, 403, 200, 403, 403, 200],
    "adjudication_queue":                    [302, 404, 403, 200, 200, 403, 200, 200],
    "adjudication_candidate open":           [302, 404, 403, 200, 200, 403, 200, 200],
    "adjudication_candidate credentialed":   [302, 404, 403, 404, 404, 403, 200, 200],
    "review_candidate open":                 [302, 404, 200, 200, 200, 200, 200, 200],
    "review_candidate credentialed":         [302, 404, 404, 404, 404, 200, 200, 200],
    "review_decide":                         [302, 405, 405, 405, 405, 405, 405, 405],
    "review_draft":                          [302, 405, 405, 405, 405, 405, 405, 405],
    "review_overturn":                       [302, 405, 405, 405, 405, 405, 405, 405],
    "candidate_browse":                      [302, 404, 403, 200, 200, 403, 200, 200],
    "candidate_history open":                [302, 404, 403, 200, 200, 403, 200, 200],
    "candidate_history credentialed":        [302, 404, 403, 404, 404, 403, 200, 200],
    "candidate_bulk":                        [302, 405, 405, 405, 405, 405, 405, 405],
    "candidate_regenerate":                  [302, 405, 405, 405, 405, 405, 405, 405],
    "project_stats":                         [302, 404, 200, 200, 200, 200, 200, 200],
    "rejection_analytics":                   [302, 404, 403, 200, 200, 403, 200, 200],
    "rejection_analytics_csv":               [302, 404, 403, 200, 200, 403, 200, 200],
    "export_list":                           [302, 404, 403, 403, 200, 403, 403, 200],
    "export_detail":                         [302, 404, 403, 200, 200, 403, 200, 200],
    "export_retry":                          [302, 405, 405, 405, 405, 405, 405, 405],
    "export_download credentialed":          [302, 404, 403, 404, 404, 403, 200, 200],
    "evaluation_list":                       [302, 404, 403, 200, 200, 403, 200, 200],
    "evaluation_detail":                     [302, 404, 403, 200, 200, 403, 200, 200],
    "image_file open":                       [302, 404, 200, 200, 200, 200, 200, 200],
    "image_file credentialed":               [302, 404, 404, 404, 404, 200, 200, 200],
}


def _client(world, actor) -> Client:
    client = Client()
    if actor != "anonymous":
        client.force_login(world.users[actor])
    return client


def _url(world, name, kwargs) -> str:
    return reverse(name, kwargs={k: world.ids.get(v, v) for k, v in kwargs.items()})


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _patterns(patterns, namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                continue  # the Django admin checks is_staff itself
            yield from _patterns(p.url_patterns, p.namespace or namespace)
        elif isinstance(p, URLPattern) and p.name:
            yield f"{namespace}:{p.name}" if namespace else p.name


def test_every_url_has_a_row():
    named = set(_patterns(get_resolver().url_patterns))
    covered = {name for name, _ in CASES.values()}
    assert named - covered == set(), "add these URLs to the access table"
    assert set(CASES) == set(EXPECTED), "every case needs its outcomes written down"


def test_access_table_and_no_credentialed_text_without_access(db):
    # One world for every row: building it (images, an export) is the slow part.
    world = build_world()
    clients = {actor: _client(world, actor) for actor in ACTORS}
    wrong, leaks = {}, []
    for case, (name, kwargs) in sorted(CASES.items()):
        url = _url(world, name, kwargs)
        got = []
        for actor in ACTORS:
            response = clients[actor].get(url)
            got.append(response.status_code)
            if "+cred" not in actor and MARKER.encode() in _body(response):
                leaks.append(f"{case} ({url}) as {actor}")
        if got != EXPECTED[case]:
            wrong[case] = {a: (g, e) for a, g, e in zip(ACTORS, got, EXPECTED[case], strict=True)
                           if g != e}
    assert leaks == [], "credentialed text reached users without credentialed access"
    assert wrong == {}, "(got, expected) per actor"
    # The credentialed users do see it: the check above looks for text that is there.
    assert MARKER in clients["adjudicator+cred"].get(
        _url(world, "candidate_browse", {"slug": "slug"})).content.decode()
