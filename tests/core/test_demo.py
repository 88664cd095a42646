from django.contrib.auth import get_user_model
from django.core.management import call_command

from medmax_review.projects.models import Membership, Project
from medmax_review.review.models import PENDING, Candidate
from medmax_review.sources.models import SourceRecord


def test_load_demo_on_fresh_database_creates_accounts_records_and_candidates(db, capsys):
    call_command("load_demo")
    out = capsys.readouterr().out

    project = Project.objects.get(slug="demo")
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"admin": "admin", "reviewer": "reviewer"}
    # Passwords are random and printed once.
    assert out.count("(shown once)") == 2
    admin_password = out.split("username: admin  password: ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(admin_password)

    # 150 VQA-RAD + 137 SLAKE + 4 scikit-image + 2 DICOM records.
    assert SourceRecord.objects.filter(project=project).count() == 293
    vqa = Candidate.objects.filter(project=project, task="vqa", status=PENDING)
    assert vqa.count() == 287
    assert Candidate.objects.filter(project=project, task="image_captioning").exists()


def test_load_demo_twice_changes_nothing_and_keeps_passwords(db, capsys):
    call_command("load_demo")
    first = capsys.readouterr().out
    counts = (SourceRecord.objects.count(), Candidate.objects.count())
    call_command("load_demo")
    second = capsys.readouterr().out
    assert (SourceRecord.objects.count(), Candidate.objects.count()) == counts
    assert "(shown once)" in first and "(shown once)" not in second
    assert "its password is unchanged" in second
