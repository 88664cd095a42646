from django.conf import settings
from django.db import models

ADMIN = "admin"
ADJUDICATOR = "adjudicator"
REVIEWER = "reviewer"
ROLE_CHOICES = [(ADMIN, "admin"), (ADJUDICATOR, "adjudicator"), (REVIEWER, "reviewer")]
# A role includes the powers of the roles after it.
ROLE_RANK = {ADMIN: 3, ADJUDICATOR: 2, REVIEWER: 1}

# What the review queue hands out first. The learned orders fall back to the score order while
# the project has no reject model (too few verdicts of both kinds).
QUEUE_SCORES, QUEUE_LIKELY_BAD, QUEUE_UNCERTAIN = "scores", "likely_bad", "uncertain"
QUEUE_ORDER_CHOICES = [
    (QUEUE_LIKELY_BAD, "likely rejections first (learned reject risk, highest first)"),
    (QUEUE_UNCERTAIN, "most uncertain first (learned reject risk nearest 50%)"),
    (QUEUE_SCORES, "weakest scores first (the pre-scores only)"),
]


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to reviewers")
    reviews_required = models.PositiveSmallIntegerField(default=1)
    # Per-score thresholds below which a candidate is auto-rejected, e.g. {"format": 0.2}.
    auto_reject_thresholds = models.JSONField(default=dict, blank=True)
    queue_order = models.CharField(max_length=20, choices=QUEUE_ORDER_CHOICES,
                                   default=QUEUE_LIKELY_BAD)
    # The statistics page suggests auto-reject thresholds that would have wrongly rejected
    # (a clinician kept the candidate) less than this share of what they reject.
    auto_reject_max_wrong = models.FloatField(
        default=0.05, help_text="largest share of wrong rejections a suggested threshold may make")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    def __str__(self):
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=ROLE_CHOICES, default=REVIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def has_role(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class UserProfile(models.Model):
    """Per-user flags that Django's user does not carry."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    # May see records from credentialed sources (MIMIC-style data-use agreements).
    credentialed_access = models.BooleanField(default=False)


class ProjectFigures(models.Model):
    """Figures whose computing reads the whole project (the dashboard's counts, the statistics
    page), stored so a page view reads one row; projects.figures keeps them fresh."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="figures")
    name = models.CharField(max_length=40)
    data = models.JSONField(null=True, blank=True)  # None until first computed
    computed_at = models.DateTimeField(null=True, blank=True)
    # Set by the one process that sends a refresh; cleared when the refresh is stored.
    refresh_claimed_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.FloatField(default=0.0)  # the last computation's duration

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="figures_unique_name")
        ]
