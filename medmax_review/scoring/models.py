from django.db import models


class ImageFingerprint(models.Model):
    """What the image scorer learned about one stored image, computed once per ImageAsset."""

    image = models.OneToOneField(
        "sources.ImageAsset", on_delete=models.CASCADE, related_name="fingerprint"
    )
    decodable = models.BooleanField()
    error = models.CharField(max_length=300, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    stddev = models.FloatField(default=0.0)
    # 64-bit difference hash stored as a signed bigint (Postgres has no unsigned 64-bit type).
    dhash = models.BigIntegerField(default=0)

    @property
    def dhash_unsigned(self) -> int:
        return self.dhash & ((1 << 64) - 1)


class ImageHashBand(models.Model):
    """One 8-bit band of a fingerprint's hash; near-duplicate lookup joins on equal bands."""

    fingerprint = models.ForeignKey(ImageFingerprint, on_delete=models.CASCADE, related_name="bands")
    key = models.IntegerField(help_text="band index * 256 + band value")

    class Meta:
        # Near-duplicate image lookup: fingerprints sharing any band key.
        indexes = [models.Index(fields=["key"], name="image_band_key_idx")]


class CandidateSignature(models.Model):
    """A candidate's MinHash signature, kept with the hash of the text it was computed from."""

    candidate = models.OneToOneField(
        "review.Candidate", on_delete=models.CASCADE, related_name="signature"
    )
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE)
    text_sha1 = models.CharField(max_length=40)
    minhash = models.JSONField(default=list)


class CandidateBand(models.Model):
    """One LSH band key of a candidate's signature."""

    signature = models.ForeignKey(CandidateSignature, on_delete=models.CASCADE, related_name="bands")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE)
    candidate_id_copy = models.BigIntegerField(help_text="the candidate, to compare ids without a join")
    key = models.BigIntegerField()

    class Meta:
        # Near-duplicate candidate lookup: earlier candidates of the project with an equal band.
        indexes = [models.Index(fields=["project", "key", "candidate_id_copy"], name="cand_band_key_idx")]


class RejectModel(models.Model):
    """Per project: a logistic regression from a candidate's scores to "a clinician will reject
    it", fitted on the project's standing verdicts by scoring.confidence (a periodic task)."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, related_name="reject_model"
    )
    features = models.JSONField(help_text="feature names, in the order of weights")
    weights = models.JSONField(help_text="one weight per standardised feature")
    intercept = models.FloatField()
    means = models.JSONField()
    scales = models.JSONField()
    decisions = models.PositiveIntegerField(help_text="verdicts it was fitted on")
    rejected = models.PositiveIntegerField(help_text="of which rejections")
    version = models.PositiveIntegerField(default=1, help_text="bumped on every refit")
    trained_at = models.DateTimeField(auto_now=True)
    # What it was fitted on (features, candidates, labels, their scores): a refit on the same
    # is skipped, so an idle project's risks are not rewritten every hour.
    trained_on = models.CharField(max_length=64, blank=True, default="")
