from django.conf import settings
from django.db import models


class DatasetVersion(models.Model):
    """One immutable export of a project, numbered per project, with its manifest."""

    PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
    STATUS_CHOICES = [(s, s) for s in (PENDING, RUNNING, DONE, FAILED)]

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="exports")
    number = models.PositiveIntegerField()
    format = models.CharField(max_length=10, default="medmax")
    options = models.JSONField(default=dict, blank=True, help_text="filters, splits, flags")
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(default=dict, blank=True)
    path = models.CharField(max_length=500, blank=True, help_text="folder under MEDIA_ROOT")
    error = models.TextField(blank=True)
    # Touched after every batch while building; a running version whose heartbeat is older
    # than EXPORT_STALE_SECONDS has lost its worker and may be taken over by another.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Builds started so far; the build whose number this is owns the folder (a build that was
    # taken over finds the number changed and stops without touching the files).
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="export_unique_number")
        ]

    @property
    def holds_credentialed(self) -> bool:
        """Rows from credentialed sources are in the files: only credentialed users get them."""
        return bool((self.manifest or {}).get("counts", {}).get("credential", {}).get("yes"))
