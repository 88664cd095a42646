"""The accounts a set-up command created, kept where only this user can read them.

Passwords are printed when accounts are made, but a worker's log soon scrolls them away: the
file lets `run_all` show them again once the server is up, and `reset_password` keeps it true.
"""

import os
from pathlib import Path

from django.conf import settings

FILE_NAME = "accounts.txt"
HEADER = "# MedMax Review accounts made by the set-up commands (username  role  password)\n"


def accounts_path() -> Path:
    return Path(settings.VAR_DIR) / FILE_NAME


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {line.split()[0]: line for line in lines}


def account_record(*, username: str, role: str, password: str) -> Path:
    """Add or replace the account's line; the file is created readable by its owner only."""
    path = accounts_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = _read(path)
    entries[username] = f"{username}  {role}  {password}"
    temp = path.with_name(f".{FILE_NAME}.partial")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(HEADER + "".join(line + "\n" for line in entries.values()))
    os.chmod(temp, 0o600)  # an existing file keeps its mode through O_CREAT
    os.replace(temp, path)
    return path


def account_role(username: str) -> str | None:
    line = _read(accounts_path()).get(username)
    return line.split()[1] if line else None


def accounts_banner() -> str:
    """What run_all prints once the server is up: the accounts, or how to make one."""
    path = accounts_path()
    entries = _read(path)
    if not entries:
        return ("No accounts recorded here. Make an admin with `python manage.py createsuperuser`; "
                "reset a lost password with `python manage.py reset_password USERNAME`.")
    lines = [f"Accounts (kept in {path}, readable by you only):"]
    lines += [f"  {line}" for line in entries.values()]
    lines.append("Lost one? `python manage.py reset_password USERNAME` prints a new one.")
    return "\n".join(lines)
