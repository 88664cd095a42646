"""A project with open and credentialed content, and a cast of every role with and without
credentialed access, for the access table."""

from dataclasses import dataclass

from medmax_review.core import medmax
from medmax_review.evaluation.models import EvaluationRun
from medmax_review.exports import services as exports
from medmax_review.generation import services as generation
from medmax_review.projects import services as projects
from medmax_review.projects.models import ADJUDICATOR, ADMIN, REVIEWER
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.sources import services as sources
from medmax_review.sources.images import image_store
from medmax_review.sources.models import SourceRecord
from tests.conftest import PASSWORD
from tests.sources.conftest import png_bytes

# Text only a credentialed user may ever see in a response.
MARKER = "CREDENTIALED-7f3a-MARKER"
ROLES = ("reviewer", "adjudicator", "admin")
ACTORS = ("anonymous", "outsider", *ROLES, *(f"{r}+cred" for r in ROLES))


@dataclass
class World:
    project: object
    users: dict
    ids: dict


def _record(project, external_id, *, credential, text, color):
    image = image_store(data=png_bytes(color=color))
    return SourceRecord.objects.create(
        project=project, source="site", external_id=external_id, credential=credential,
        question=f"{text} question?", answer=f"{text} answer", image=image,
        license="CC-BY-4.0")


def _candidate(project, record, *, text, approved):
    spec = CandidateSpec(
        record_id=record.pk, task=medmax.VQA, instruction=f"{text} instruction",
        response=f"{text} response", image_position=medmax.IMAGE_BEFORE_INSTRUCTION,
        credential=record.credential == "yes", template_ref="import",
        provenance={"import_file": "rows.jsonl", "line": 1},
    )
    (made,) = candidates_create(project=project, specs=[spec],
                                approved_note="imported as approved" if approved else "")
    return made


def build_world() -> World:
    project, _ = projects.project_get_or_create(slug="acl", name="Access table")
    users = {}
    for role in ROLES:
        for cred in (False, True):
            name = f"{role}_cred" if cred else role
            user = projects.user_create(username=name, password=PASSWORD, credentialed=cred)
            projects.membership_set(project=project, user=user,
                                    role={"reviewer": REVIEWER, "adjudicator": ADJUDICATOR,
                                          "admin": ADMIN}[role])
            users[f"{role}+cred" if cred else role] = user
    users["outsider"] = projects.user_create(username="outsider", password=PASSWORD,
                                             credentialed=True)
    open_record = _record(project, "open-1", credential="no", text="Open", color=10)
    secret_record = _record(project, "secret-1", credential="yes", text=MARKER, color=20)
    open_pending = _candidate(project, open_record, text="Open", approved=False)
    _candidate(project, _record(project, "open-2", credential="no", text="Open", color=30),
               text="Open", approved=True)
    secret_approved = _candidate(project, secret_record, text=MARKER, approved=True)
    secret_record2 = _record(project, "secret-2", credential="yes", text=MARKER, color=40)
    secret_pending = _candidate(project, secret_record2, text=MARKER, approved=False)
    import_run = sources.import_run_create(project=project, file_name="rows.jsonl", fmt="jsonl",
                                           options={})
    job = generation.job_create(project=project, task=medmax.IMAGE_CAPTIONING, backend="template")
    version = exports.dataset_version_create(project=project, options={"format": "medmax"})
    version = exports.dataset_version_build(version_id=version.pk)
    assert version.status == "done", version.error
    evaluation = EvaluationRun.objects.create(project=project, version=version, backend="local")
    return World(project=project, users=users, ids={
        "slug": project.slug, "run_id": import_run.pk, "job_id": job.pk, "number": version.number,
        "open_candidate": open_pending.pk, "secret_candidate": secret_pending.pk,
        "secret_approved": secret_approved.pk, "member": users["reviewer"].pk,
        "open_image": open_record.image.sha256, "secret_image": secret_record.image.sha256,
        "evaluation": evaluation.pk,
    })
