from django.conf import settings
from django.db import models
from django.db.models import F, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Abs

from medmax_review.core.medmax import IMAGE_POSITION_CHOICES, TASK_CHOICES

# Candidate status.
PENDING = "pending"  # waiting for its required reviews
APPROVED = "approved"
REJECTED = "rejected"
ADJUDICATION = "adjudication"  # reviewers disagreed; an adjudicator decides
FLAGGED = "flagged"  # held for discussion
GENERATION_ERROR = "generation_error"  # model output unusable; kept with its reason
CANDIDATE_STATUS_CHOICES = [
    (s, s.replace("_", " "))
    for s in (PENDING, APPROVED, REJECTED, ADJUDICATION, FLAGGED, GENERATION_ERROR)
]

# Decision actions.
APPROVE, EDIT, REJECT, SKIP, FLAG, UNDO, ADJUDICATE = (
    "approve", "edit", "reject", "skip", "flag", "undo", "adjudicate",
)
ACTION_CHOICES = [(a, a) for a in (APPROVE, EDIT, REJECT, SKIP, FLAG, UNDO, ADJUDICATE)]
# What a reviewer does on a claimed candidate; each, until undone, keeps it out of their queue.
REVIEW_ACTIONS = (APPROVE, EDIT, REJECT, SKIP, FLAG)
# A reviewer's verdict: what agreement and the candidate's outcome are made of.
VERDICTS = (APPROVE, EDIT, REJECT)
# The text fields a reviewer may edit.
EDITABLE_FIELDS = ("instruction", "response")

REJECT_REASONS = [
    ("hallucination", "hallucination"),
    ("laterality", "wrong laterality"),
    ("modality", "wrong modality"),
    ("unsafe", "unsafe advice"),
    ("phi", "protected health information"),
    ("poor_image", "poor image"),
    ("off_topic", "off topic"),
    ("formatting", "formatting"),
    ("duplicate", "duplicate"),
    ("other", "other"),
]


class Candidate(models.Model):
    """One generated instruction-response pair for one task from one source record."""

    # Indexed by candidate_project_idx (project, id), which also serves lookups by project.
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="candidates", db_index=False
    )
    record = models.ForeignKey(
        "sources.SourceRecord", on_delete=models.CASCADE, related_name="candidates"
    )
    job = models.ForeignKey(
        "generation.GenerationJob", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="candidates",
    )
    template = models.ForeignKey(
        "generation.PromptTemplate", null=True, blank=True, on_delete=models.PROTECT
    )
    # Which template version produced it ("vqa/default@v3"; "import" for imported rows).
    # Part of the idempotency key, so it is never NULL.
    template_ref = models.CharField(max_length=150, default="import")
    # The candidate this one was generated to replace (rejected, flagged or low-confidence);
    # that one keeps its decisions. Shown on the review screen as a diff against its text.
    regenerated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="regenerations"
    )
    template_version = models.PositiveIntegerField(default=0)
    sample_index = models.PositiveSmallIntegerField(default=0)
    task = models.CharField(max_length=30, choices=TASK_CHOICES)
    instruction = models.TextField(blank=True)
    context = models.TextField(blank=True)
    response = models.TextField(blank=True)
    image_position = models.CharField(max_length=20, choices=IMAGE_POSITION_CHOICES)
    provenance = models.JSONField(default=dict, blank=True, help_text="backend, model, params, ...")
    raw_output = models.TextField(blank=True)
    generation_error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=CANDIDATE_STATUS_CHOICES, default=PENDING)
    scores = models.JSONField(default=dict, blank=True, help_text="{name: {value, band, evidence}}")
    priority = models.FloatField(default=0.0)
    # The project's learned "a clinician rejects this" probability (scoring.confidence); None
    # until the project has a model. For a candidate the model learned from, it is the
    # out-of-fold prediction, so the statistics page judges the model on unseen verdicts.
    reject_risk = models.FloatField(null=True, blank=True)
    # {"model": version, "decisions", "rejected", "trained_at", "drivers": [[feature, weight]]}
    reject_risk_detail = models.JSONField(default=dict, blank=True)
    # Optimistic concurrency: bumped on every change of text or status.
    version = models.PositiveIntegerField(default=1)
    credential = models.BooleanField(default=False, help_text="copied from the record, for the queue")
    edited = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A redelivered or repeated generation task never makes a second candidate.
            models.UniqueConstraint(
                fields=["record", "task", "template_ref", "sample_index"],
                name="candidate_unique_generation",
            ),
        ]
        indexes = [
            # A project's candidates in id order, unfiltered (the browser's first page, exports'
            # batches): without it, a small project's newest-first page walks the primary key
            # back through every larger project's candidates (1.5 s beside 1.47M).
            models.Index(fields=["project", "id"], name="candidate_project_idx"),
            # The candidate browser: keyset pagination by id within a project and status.
            models.Index(fields=["project", "status", "id"], name="candidate_browse_idx"),
            # Export: approved candidates of a project in id order.
            models.Index(fields=["project", "task", "status"], name="candidate_task_idx"),
            # Candidate browser, sorted by priority (either direction): keyset on (priority, id).
            models.Index(fields=["project", "priority", "id"], name="candidate_priority_idx"),
            # Candidate browser, task filter: keyset by id within one task.
            models.Index(fields=["project", "task", "id"], name="candidate_task_id_idx"),
            # Candidate browser, template version filter: keyset by id within one template_ref.
            models.Index(fields=["project", "template_ref", "id"], name="candidate_template_idx"),
            # Candidate browser, model filter: provenance->>'model' = %s, keyset by id.
            models.Index(
                F("project"), KT("provenance__model"), F("id"), name="candidate_model_idx"
            ),
            # (The score band filter uses a PostgreSQL-only GIN index on scores, created in
            # migration 0002_candidate_browse_indexes.)
        ]

    def __str__(self):
        return f"candidate {self.pk} ({self.task}, {self.status})"


class ReviewSlot(models.Model):
    """One of the N reviews a candidate needs. A claim is a reviewer's lease on a slot."""

    OPEN, CLAIMED, DONE = "open", "claimed", "done"
    STATE_CHOICES = [(s, s) for s in (OPEN, CLAIMED, DONE)]

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="slots")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE)
    index = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=10, choices=STATE_CHOICES, default=OPEN)
    priority = models.FloatField(default=0.0, help_text="copied from the candidate, for the queue")
    # The candidate's reject risk, -1 while it has none, so "likely bad first" puts unknown last.
    risk = models.FloatField(default=-1.0, help_text="copied from the candidate, for the queue")
    # Distance from a coin toss: "most uncertain first" reads it ascending (unknown: 1.5, last).
    certainty = models.GeneratedField(
        expression=Abs(F("risk") - Value(0.5)), output_field=models.FloatField(), db_persist=True
    )
    credential = models.BooleanField(default=False)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["candidate", "index"], name="slot_unique_index"),
            # One reviewer never holds two slots of one candidate.
            models.UniqueConstraint(
                fields=["candidate", "reviewer"], name="slot_unique_reviewer",
                condition=models.Q(reviewer__isnull=False),
            ),
        ]
        indexes = [
            # claim_next: the open slots of a project, highest priority first.
            models.Index(
                fields=["project", "-priority", "id"], name="slot_queue_idx",
                condition=models.Q(state="open"),
            ),
            # The same, for the projects that order their queue by the learned reject risk.
            models.Index(
                F("project"), F("risk").desc(), F("priority").desc(), F("id"),
                name="slot_queue_risk_idx", condition=models.Q(state="open"),
            ),
            models.Index(
                F("project"), F("certainty"), F("priority").desc(), F("id"),
                name="slot_queue_uncertain_idx", condition=models.Q(state="open"),
            ),
            # Releasing expired claims.
            models.Index(
                fields=["project", "claim_expires_at"], name="slot_expiry_idx",
                condition=models.Q(state="claimed"),
            ),
        ]


class Revision(models.Model):
    """One immutable saved version of a text field. author=None: the model (or the importer)."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="revisions")
    field = models.CharField(max_length=20)
    text = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    candidate_version = models.PositiveIntegerField()
    # True: the candidate carried this text from `candidate_version` on. False: a reviewer's
    # proposed edit, kept while other reviewers are still blind to it.
    applied = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["candidate", "field", "id"], name="revision_history_idx")]


class Decision(models.Model):
    """One reviewer's verdict on one candidate; immutable. Undo is a later decision, not a delete."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        help_text="empty for a system decision",
    )
    action = models.CharField(max_length=12, choices=ACTION_CHOICES)
    reason = models.CharField(max_length=20, choices=REJECT_REASONS, blank=True)
    comment = models.TextField(blank=True)
    system_note = models.CharField(max_length=500, blank=True)
    candidate_version = models.PositiveIntegerField()
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by"
    )
    # For edit decisions: the final instruction/response the reviewer approved.
    instruction = models.TextField(blank=True)
    response = models.TextField(blank=True)
    # A client-made key: the same submission sent twice is recorded once.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["reviewer", "created_at"], name="decision_reviewer_idx")]


class Draft(models.Model):
    """Autosaved, unsubmitted edits of one reviewer on one candidate (mutable by design)."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="drafts")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    instruction = models.TextField(blank=True)
    response = models.TextField(blank=True)
    base_version = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["candidate", "reviewer"], name="draft_unique_reviewer")
        ]


class AuditEntry(models.Model):
    """Bulk and admin actions, for the record."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=50)
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
