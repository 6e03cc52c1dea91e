"""Channel credentials (user, password, /t/ token) never reach a recorded lock or conda-lock.yml;
a committed conda-lock.yml that leads out of the project is never read."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.envs.conda.channels import redact, redact_text, secrets_of, with_credentials
from runner.envs.conda.condalock import render
from runner.envs.conda.envfile import LOCK_NAME
from runner.envs.conda.lockdata import CondaLock, CondaPackage
from tests.helpers import write_project
from tests.security.test_project_containment import HINT, MAIN, SECRET, refusal_before_the_run

_WORD = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=16)
_PATH = st.lists(_WORD, max_size=3).map("/".join)


def _package(channel: str) -> CondaPackage:
    return CondaPackage(
        "x", "1", "0", 0, "noarch", None, (), f"{channel}/noarch/x-1-0.conda", "a" * 32, "b" * 64
    )


@settings(max_examples=300, deadline=None)
@given(user=_WORD, password=_WORD, token=_WORD, path=_PATH, port=st.none() | st.integers(1, 65535))
def test_no_credential_survives_redaction(
    user: str, password: str, token: str, path: str, port: int | None
) -> None:
    # markers no host, path or JSON key can contain, so a hit is a leak
    user, password, token = f"U~{user}", f"P~{password}", f"T~{token}"
    host = "conda.example.invalid" + (f":{port}" if port else "")
    private = f"https://{user}:{password}@{host}/t/{token}/{path}".rstrip("/")
    public = redact(private)
    lock = CondaLock("linux-64", (public,), (_package(public),))
    for text in (public, lock.text(), render(lock, "d" * 64, "conda.yaml")):
        assert user not in text and password not in text and token not in text
    # the download URL gets them back, for this channel only
    secrets = secrets_of([private])
    package_url = _package(public).url
    assert with_credentials(package_url, secrets) == _package(private).url
    assert with_credentials("file:///srv/other/x.conda", secrets) == "file:///srv/other/x.conda"


def test_a_conda_lock_linked_out_of_the_project_is_never_read(
    tmp_path: Path, runner_home: Path
) -> None:
    secret = tmp_path / "outside" / "conda-lock.yml"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    project = write_project(
        tmp_path / "proj",
        {"MLproject": f"conda_env: conda.yaml\n{MAIN}", "conda.yaml": "dependencies: [x]\n"},
    )
    (project / LOCK_NAME).symlink_to(secret)
    message = f"{LOCK_NAME} is a link to {secret}, outside the project: refused"
    assert refusal_before_the_run(project, runner_home) == f"error: {message}\nhint: {HINT}\n"


@settings(max_examples=300, deadline=None)
@given(user=_WORD, password=_WORD, token=_WORD, before=_WORD, after=_PATH)
def test_messages_lose_url_credentials(
    user: str, password: str, token: str, before: str, after: str
) -> None:
    user, password, token = f"U~{user}", f"P~{password}", f"T~{token}"
    message = (
        f"{before}: failed to fetch https://{user}:{password}@conda.example.invalid/chan/{after}"
        f"\nCaused by: http://conda.example.invalid/t/{token}/chan/noarch/repodata.json: 403"
    )
    clean = redact_text(message)
    assert user not in clean and password not in clean and token not in clean
    assert "https://conda.example.invalid/chan" in clean
    assert "http://conda.example.invalid/chan/noarch/repodata.json: 403" in clean
