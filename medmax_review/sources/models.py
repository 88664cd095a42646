from django.conf import settings
from django.db import models

CREDENTIAL_CHOICES = [("no", "no"), ("yes", "yes")]


class ImageAsset(models.Model):
    """An image stored once by the SHA-256 of its bytes; records point at it, never at a path."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.CharField(max_length=200, help_text="path under MEDIA_ROOT, derived from sha256")
    format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    modality = models.CharField(max_length=40, blank=True)
    # Set for images rendered from DICOM: the window used and the presets to offer.
    dicom = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.sha256[:12]}.{self.format}"


class ImportRun(models.Model):
    PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
    STATUS_CHOICES = [(s, s) for s in (PENDING, RUNNING, DONE, FAILED)]
    FINISHED = (DONE, FAILED)

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="imports")
    file_name = models.CharField(max_length=500)
    format = models.CharField(max_length=20)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    # The first problems one by one (see services.ERRORS_KEPT); the counts cover them all.
    errors = models.JSONField(
        default=list, blank=True, help_text="[{file, line, unit, field, message}]"
    )
    problems = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0, help_text="rows refused")
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    upload_path = models.CharField(max_length=500, blank=True)
    # Touched with every progress write; a running import whose heartbeat is older than
    # IMPORT_STALE_SECONDS has lost its worker and is taken over (rows already written come
    # back as duplicates, so nothing is imported twice).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def problems_unlisted(self) -> int:
        return max(self.problems - len(self.errors), 0)


class SourceRecord(models.Model):
    """One imported item. Never changed after import: candidates and decisions point at it."""

    # Indexed by record_project_idx (project, id), which also serves lookups by project.
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="records",
                                db_index=False)
    source = models.CharField(max_length=100, help_text="source dataset name, e.g. vqa_rad")
    external_id = models.CharField(max_length=200)
    license = models.CharField(max_length=100, blank=True)
    credential = models.CharField(max_length=3, choices=CREDENTIAL_CHOICES, default="no")
    image = models.ForeignKey(
        ImageAsset, null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )
    modality = models.CharField(max_length=40, blank=True)
    language = models.CharField(max_length=10, blank=True)
    caption = models.TextField(blank=True)
    inline_mention = models.TextField(blank=True)
    question = models.TextField(blank=True)
    answer = models.TextField(blank=True)
    report = models.TextField(blank=True)
    meta = models.JSONField(default=dict, blank=True)
    import_run = models.ForeignKey(ImportRun, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "source", "external_id"], name="record_unique_external_id"
            )
        ]
        indexes = [
            # A project's records in id order (generation's first N): not a walk along the
            # primary key through other projects' records.
            models.Index(fields=["project", "id"], name="record_project_idx"),
            # Generation selects records by source / licence / modality within a project.
            models.Index(fields=["project", "source", "license"], name="record_filter_idx"),
        ]

    def __str__(self):
        return f"{self.source}:{self.external_id}"

    @property
    def is_credentialed(self) -> bool:
        return self.credential == "yes"
