"""Errors reaching Prometheus keep the HTTP status and say what to check.

Real servers on 127.0.0.1: a tiny HTTP server answering 404 (a wrong path prefix), 401
and 403 (credentials), an HTML page (not the API); a host under ``.invalid`` (RFC 6761:
never resolves); ``https://`` to a plain-HTTP port (a TLS failure); a closed port
(connection refused). Each is told apart in the message, and the commands exit 4.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from analyzer.adapters.prometheus import PrometheusSource
from analyzer.core.ports import MetricsUnreachableError
from analyzer.settings import PrometheusSettings
from tests.fixtures.canned_http import canned_server, closed_port


def ping_error(url: str) -> str:
    source = PrometheusSource(PrometheusSettings(url=url, retries=0))
    try:
        with pytest.raises(MetricsUnreachableError) as caught:
            source.ping()
    finally:
        source.close()
    return str(caught.value)


def test_a_wrong_path_prefix_is_a_404_with_the_prefix_to_check():
    with canned_server(404, b"404 page not found\n") as url:
        message = ping_error(f"{url}/wrong-prefix")
    assert "HTTP 404" in message and "path prefix" in message
    assert "cannot reach" not in message


@pytest.mark.parametrize(
    ("status", "check"), [(401, "bearer_token_file"), (403, "X-Scope-OrgID")]
)
def test_auth_failures_keep_their_status_and_name_the_credentials(status, check):
    with canned_server(status, b"unauthorized") as url:
        message = ping_error(url)
    assert f"HTTP {status}" in message and check in message


def test_an_html_page_is_not_the_api():
    with canned_server(200, b"<html>login</html>", "text/html") as url:
        message = ping_error(url)
    assert "not the PromQL API's JSON" in message


def test_dns_failure_names_the_host():
    message = ping_error("http://nonexistent.invalid:9090")
    assert "resolve" in message and "nonexistent.invalid" in message and "DNS" in message


def test_https_to_a_plain_http_port_is_a_tls_failure():
    with canned_server(200, b"{}", "application/json") as url:
        message = ping_error(url.replace("http://", "https://"))
    assert "TLS with 127.0.0.1:" in message and "http:// versus https://" in message


def test_connection_refused_names_the_port():
    port = closed_port()
    message = ping_error(f"http://127.0.0.1:{port}")
    assert f"connection refused by 127.0.0.1:{port}" in message


def test_the_four_failures_are_told_apart():
    port = closed_port()
    with canned_server(401) as auth_url, canned_server(200, b"{}") as plain:
        messages = {
            "auth": ping_error(auth_url),
            "dns": ping_error("http://nonexistent.invalid"),
            "tls": ping_error(plain.replace("http://", "https://")),
            "refused": ping_error(f"http://127.0.0.1:{port}"),
        }
    assert len(set(messages.values())) == 4
    assert "HTTP 401" in messages["auth"] and "DNS" in messages["dns"]
    assert "TLS" in messages["tls"] and "refused" in messages["refused"]


def test_analyze_against_a_wrong_prefix_exits_4_naming_the_404(tmp_path):
    with canned_server(404, b"404 page not found\n") as url:
        result = subprocess.run(
            [sys.executable, "-m", "analyzer", "analyze", "--namespace", "shop",
             "--restarted-at", "2026-03-02T01:30:00Z", "--prometheus-url", f"{url}/nope",
             "--rules", "rules"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "CANARY_PROMETHEUS__RETRIES": "0"},
        )  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert "HTTP 404" in result.stderr and "path prefix" in result.stderr
