from django.conf import settings
from django.db import models

from medmax_review.core.medmax import TASK_CHOICES

BACKEND_TEMPLATE = "template"
BACKEND_LOCAL = "local"
BACKEND_OPENAI = "openai"
BACKEND_CHOICES = [
    (BACKEND_TEMPLATE, "template (deterministic)"),
    (BACKEND_LOCAL, "local SmolLM2-135M-Instruct"),
    (BACKEND_OPENAI, "OpenAI-compatible server"),
]


class PromptTemplate(models.Model):
    """One version of a prompt. A version that produced candidates is never edited in place."""

    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE,
        related_name="templates", help_text="empty: a shipped default for every project",
    )
    task = models.CharField(max_length=30, choices=TASK_CHOICES)
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    text = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "task", "name", "version"], name="template_unique_version"
            )
        ]
        ordering = ["task", "name", "-version"]

    def __str__(self):
        return f"{self.task}/{self.name} v{self.version}"

    @property
    def ref(self) -> str:
        """What candidates record (and what makes them unique): "vqa/default@v2"."""
        return f"{self.task}/{self.name}@v{self.version}"


class GenerationJob(models.Model):
    PENDING, RUNNING, CANCELLED, DONE, FAILED = "pending", "running", "cancelled", "done", "failed"
    STATUS_CHOICES = [(s, s) for s in (PENDING, RUNNING, CANCELLED, DONE, FAILED)]

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="jobs")
    task = models.CharField(max_length=30, choices=TASK_CHOICES)
    backend = models.CharField(max_length=20, choices=BACKEND_CHOICES, default=BACKEND_TEMPLATE)
    model = models.CharField(max_length=200, blank=True)
    base_url = models.CharField(max_length=500, blank=True)
    parameters = models.JSONField(default=dict, blank=True, help_text="temperature, max_tokens, ...")
    filters = models.JSONField(default=dict, blank=True, help_text="source, license, modality, limit")
    samples = models.PositiveSmallIntegerField(default=1)
    template = models.ForeignKey(PromptTemplate, null=True, blank=True, on_delete=models.PROTECT)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    token_cap = models.PositiveBigIntegerField(null=True, blank=True)
    cost_cap_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    error = models.TextField(blank=True)
    # The records chosen at launch, in order: resuming or re-running never re-selects.
    record_ids = models.JSONField(default=list, blank=True)
    # A regeneration job: {record id: the candidate its new candidate replaces}.
    regenerates = models.JSONField(default=dict, blank=True)
    skipped = models.PositiveIntegerField(default=0, help_text="records lacking the task's text")
    skip_note = models.CharField(max_length=300, blank=True)
    # The latest heartbeat of any of its chunks' workers (chunks hold the leases); a running
    # job without a recent one has no live worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Requests its workers have open now (the sum over its running chunks); at a cancel, how
    # many were open then (they finish and are saved).
    in_flight = models.PositiveIntegerField(default=0)
    in_flight_at_stop = models.PositiveIntegerField(null=True, blank=True)
    # The damped time-left estimate and when it was made (the page counts down from it).
    eta_seconds = models.FloatField(null=True, blank=True)
    eta_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"job {self.pk} {self.task} {self.backend} ({self.status})"


class GenerationChunk(models.Model):
    """A slice of a job's records, run as a task of its own so several workers share a job.

    A chunk is claimed with a lease (core.leases): PENDING has work left, RUNNING is held by
    the worker named in `runner`, DONE has every item generated or failed. A worker that runs
    out of its own chunk goes on with the job's next pending one without letting its requests
    run dry, so the chunk is the unit of sharing, not of waiting.
    """

    PENDING, RUNNING, DONE = "pending", "running", "done"
    STATUS_CHOICES = [(s, s) for s in (PENDING, RUNNING, DONE)]

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    # Positions in the job's record_ids: records[start:stop].
    start = models.PositiveIntegerField()
    stop = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING)
    runner = models.CharField(max_length=32, blank=True, help_text="the run holding the lease")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    in_flight = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="generation_chunk_unique_index")
        ]
        indexes = [
            # The next chunk to claim, the workers sharing a job, "are all chunks done?".
            models.Index(fields=["job", "status"], name="generation_chunk_job_status"),
        ]

    def __str__(self):
        return f"job {self.job_id} chunk {self.index} ({self.status})"
