"""Channel credentials (user, password, /t/ token) never reach a recorded lock or conda-lock.yml."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.envs.conda.channels import redact, secrets_of, with_credentials
from runner.envs.conda.condalock import render
from runner.envs.conda.lockdata import CondaLock, CondaPackage

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
