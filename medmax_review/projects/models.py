from django.conf import settings
from django.db import models

ADMIN = "admin"
ADJUDICATOR = "adjudicator"
REVIEWER = "reviewer"
ROLE_CHOICES = [(ADMIN, "admin"), (ADJUDICATOR, "adjudicator"), (REVIEWER, "reviewer")]
# A role includes the powers of the roles after it.
ROLE_RANK = {ADMIN: 3, ADJUDICATOR: 2, REVIEWER: 1}


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to reviewers")
    reviews_required = models.PositiveSmallIntegerField(default=1)
    # Per-score thresholds below which a candidate is auto-rejected, e.g. {"format": 0.2}.
    auto_reject_thresholds = models.JSONField(default=dict, blank=True)
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
