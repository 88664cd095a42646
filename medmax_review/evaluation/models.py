from django.conf import settings
from django.db import models


class EvaluationRun(models.Model):
    """One model asked every VQA and captioning item of one split of one dataset version."""

    PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
    STATUS_CHOICES = [(s, s) for s in (PENDING, RUNNING, DONE, FAILED)]

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE,
                                related_name="evaluations")
    version = models.ForeignKey("exports.DatasetVersion", on_delete=models.CASCADE,
                                related_name="evaluations")
    split = models.CharField(max_length=20, default="test")
    backend = models.CharField(max_length=20)
    model = models.CharField(max_length=200, blank=True)
    base_url = models.CharField(max_length=500, blank=True)
    # The judge of open answers; empty: token F1 against the reference.
    judge_backend = models.CharField(max_length=20, blank=True)
    judge_model = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    # {overall, by_task, by_source, by_question_type: {key: {n, accuracy, se}}, skipped}
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"evaluation {self.pk} of v{self.version.number} ({self.model}, {self.status})"


class EvaluationItem(models.Model):
    """One item's answer and score; the unique key lets a resumed run skip what it has."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="items")
    candidate_id = models.PositiveBigIntegerField()
    task = models.CharField(max_length=30)
    source = models.CharField(max_length=100)
    question_type = models.CharField(max_length=20)
    prediction = models.TextField(blank=True)
    score = models.FloatField()
    method = models.CharField(max_length=20)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "candidate_id"], name="evaluation_item_once")
        ]
