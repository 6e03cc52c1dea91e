"""Property tests of the Kubernetes backend's rules: Job names and the pods' tracking URI."""

from __future__ import annotations

import ipaddress
import re

import kubernetes_validate
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.kubernetes.config import pod_tracking_uri
from backends.kubernetes.manifest import job_name
from runner.errors import BackendError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@settings(max_examples=500, deadline=None)
@given(
    st.text(min_size=1, max_size=200).filter(lambda t: any(c.isalnum() and c.isascii() for c in t))
)
def test_every_run_id_gives_a_dns_label_of_at_most_63(run_id: str) -> None:
    name = job_name(run_id)
    assert len(name) <= 63
    assert DNS_LABEL.match(name), name


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="abcdef0123456789", min_size=32, max_size=32),
    st.text(alphabet="abcdef0123456789", min_size=32, max_size=32),
)
def test_distinct_run_ids_never_share_a_job(first: str, second: str) -> None:
    # runner's run ids are 32 hex digits: the name keeps all of them, so it is injective
    assert (job_name(first) == job_name(second)) == (first == second)


_LOOPBACK_V4 = st.ip_addresses(v=4, network="127.0.0.0/8")
_LOOPBACK = (
    _LOOPBACK_V4
    | _LOOPBACK_V4.map(lambda a: ipaddress.ip_address(f"::ffff:{a}"))  # IPv4-mapped IPv6
    | st.sampled_from([ipaddress.ip_address(a) for a in ("::1", "::", "0.0.0.0")])
)


@settings(max_examples=300, deadline=None)
@given(_LOOPBACK, st.integers(min_value=1, max_value=65535), st.sampled_from(["http", "https"]))
def test_no_loopback_address_is_accepted_for_pods(address: object, port: int, scheme: str) -> None:
    host = f"[{address}]" if ":" in str(address) else str(address)
    uri = f"{scheme}://{host}:{port}/"
    try:
        pod_tracking_uri(uri, "sqlite:///x.db")
    except BackendError as exc:
        assert "a loopback address in a pod is the pod itself" in exc.message
    else:
        raise AssertionError(f"{uri} was accepted")


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["sqlite", "postgresql", "file", "mysql", "ftp", "s3"]),
    st.text(alphabet="abcdefghij/._-", min_size=1, max_size=30),
)
def test_no_database_or_file_uri_is_accepted_for_pods(scheme: str, rest: str) -> None:
    uri = f"{scheme}://{rest}"
    try:
        pod_tracking_uri(uri, "sqlite:///x.db")
    except BackendError as exc:
        assert "a pod needs an http(s) tracking server" in exc.message
    else:
        raise AssertionError(f"{uri} was accepted")


def test_the_name_is_also_what_the_schema_accepts() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name("A" * 90)},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "x"}]}
            }
        },
    }
    assert kubernetes_validate.validate(job, "1.35", strict=True) == "1.35"
