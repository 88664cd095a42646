import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from medmax_review.core import env

ROOT = Path(__file__).resolve().parents[2]


def test_env_bool_refuses_anything_but_true_or_false(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "yes")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG must be True or False"):
        env.env_bool("SOME_FLAG", False)
    monkeypatch.setenv("SOME_FLAG", "False")
    assert env.env_bool("SOME_FLAG", True) is False


def test_env_int_names_the_variable(monkeypatch):
    monkeypatch.setenv("CLAIM_TTL_SECONDS", "five")
    with pytest.raises(ImproperlyConfigured, match="CLAIM_TTL_SECONDS"):
        env.env_int("CLAIM_TTL_SECONDS", 300)


def _manage(args, extra_env, tmp_path):
    environment = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    environment.update({"MEDMAX_VAR_DIR": str(tmp_path / "var")}, **extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=120,
    )


def test_production_mode_refuses_to_start_without_secret_key(tmp_path):
    result = _manage(["check"], {"DEBUG": "False"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is False" in result.stderr


def test_check_deploy_passes_with_debug_off_and_a_secret(tmp_path):
    secret = "x" * 20 + "a-long-random-production-secret-for-the-check-0123456789"
    result = _manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {"DEBUG": "False", "SECRET_KEY": secret, "ALLOWED_HOSTS": "review.example.org"},
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_development_generates_and_keeps_a_local_secret(tmp_path):
    for _ in range(2):
        result = _manage(["check"], {}, tmp_path)
        assert result.returncode == 0, result.stderr
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.exists() and len(key_file.read_text()) >= 50
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_zero_setup_defaults_use_sqlite_and_filesystem_broker(tmp_path):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);print(s.CELERY_BROKER_URL)"
    )
    result = _manage(["shell", "--no-imports", "-c", code], {"CELERY_BROKER_URL": ""}, tmp_path)
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"], result.stderr


@pytest.mark.parametrize("flag, expected", [("", "None"), ("True", "('HTTP_X_FORWARDED_PROTO', 'https')")])
def test_proxy_https_header_is_believed_only_when_a_setting_says_a_proxy_sets_it(
    tmp_path, flag, expected
):
    secret = "x" * 60
    env = {"DEBUG": "False", "SECRET_KEY": secret, "ALLOWED_HOSTS": "review.example.org"}
    if flag:
        env["PROXY_SETS_X_FORWARDED_PROTO"] = flag
    result = _manage(["shell", "--no-imports", "-c",
                      "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"],
                     env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
