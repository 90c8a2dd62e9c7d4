"""Who sent a control verb, when an authenticating proxy stands in front of the service.

kube-rbac-proxy (``--auth-header-fields-enabled``) authenticates the caller against the
Kubernetes API (TokenReview) and passes the user to its upstream in ``x-remote-user``;
oauth2-proxy does the same in ``X-Auth-Request-User``. With ``service.user_header`` set,
that header names the sender (``authenticated_by``), above whatever the caller claims in
``X-Canary-Actor``; without it, or without the header on a request, the claim stands.
"""

from __future__ import annotations

import httpx
import pytest

from analyzer.commands.control import actor
from analyzer.views.http_api import HttpServer, TokenCheck, create_app
from tests.service.harness import make_service

TOKEN = "s3cret-token-value"


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(user_header):
        service, _, _, _, _ = make_service(tmp_path / f"s{len(servers)}")
        token_file = tmp_path / f"token{len(servers)}"
        token_file.write_text(TOKEN)
        app = create_app(service, service.metrics, TokenCheck(token_file), user_header=user_header)
        server = HttpServer(app, "127.0.0.1", 0)
        server.start()
        servers.append(server)
        return service, f"http://127.0.0.1:{server.bound_port}"

    yield start
    for server in servers:
        server.stop()


def _notes(service) -> str:
    return "\n".join(str(item.get("message")) for item in service.status()["timeline"])


def test_the_proxys_user_is_the_sender_and_a_different_claim_is_kept_apart(serve):
    service, url = serve("X-Remote-User")
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Remote-User": "alice@example.com",
               "X-Canary-Actor": "mallory", "X-Canary-Reason": "db migration"}  # fmt: skip
    answer = httpx.post(f"{url}/api/pause", headers=headers)
    assert answer.status_code == 200
    body = answer.json()
    assert body["requested_by"] == "alice@example.com"
    assert body["authenticated_by"] == "X-Remote-User"
    assert body["claimed_by"] == "mallory"
    assert "alice@example.com: db migration" in _notes(service)
    assert "mallory" not in _notes(service)


def test_without_the_proxys_header_the_claim_stands_unauthenticated(serve):
    _service, url = serve("X-Remote-User")
    answer = httpx.post(f"{url}/api/pause", headers={"Authorization": f"Bearer {TOKEN}",
                                                     "X-Canary-Actor": "bob"})  # fmt: skip
    body = answer.json()
    assert body["requested_by"] == "bob" and "authenticated_by" not in body


def test_without_the_setting_a_user_header_is_not_believed(serve):
    service, url = serve(None)
    answer = httpx.post(f"{url}/api/pause", headers={"Authorization": f"Bearer {TOKEN}",
                                                     "X-Remote-User": "eve",
                                                     "X-Canary-Actor": "bob"})  # fmt: skip
    body = answer.json()
    assert body["requested_by"] == "bob" and "authenticated_by" not in body
    assert "eve" not in _notes(service)


def test_inside_the_pod_the_verb_says_it_came_through_kubectl_exec():
    assert actor(None, {"POD_NAME": "canary-analyzer-7d9f-x2"}) == (
        "kubectl exec into canary-analyzer-7d9f-x2 (no --as)"
    )
    assert actor("alice", {"POD_NAME": "canary-analyzer-7d9f-x2"}) == "alice"
    assert actor(None, {"USER": "carol"}) not in ("", None)
