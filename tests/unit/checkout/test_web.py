"""The web app's files: served from the package, self-contained (no CDN), with a strict policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from checkout.cases import TRANSITIONS
from checkout.web import APP_DIR, web_router

FACES = ["index.html", "shopper.html", "manager.html", "loss-prevention.html"]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(web_router())
    return TestClient(app)


def test_the_sign_in_page_is_the_root_and_carries_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="sign-in-form"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("face", FACES)
def test_every_face_loads_only_files_of_the_app_that_exist(client: TestClient, face: str) -> None:
    page = client.get(f"/app/{face}")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets, f"{face} loads nothing"
    for url in assets:
        if url.startswith(("data:", "#")) or url == "/":
            continue
        assert url.startswith("/app/"), f"{face} loads {url} from outside the app"
        assert client.get(url).status_code == 200, url
    # Inline scripts and style attributes would be refused by the policy.
    assert "<script>" not in page.text and " style=" not in page.text


def test_scripts_are_modules_importing_only_their_neighbours(client: TestClient) -> None:
    scripts = sorted((APP_DIR / "js").glob("*.js"))
    assert len(scripts) >= 5
    for script in scripts:
        text = script.read_text()
        for target in re.findall(r'from "([^"]+)"', text):
            assert target.startswith("./") and (script.parent / target).is_file(), target
        assert "innerHTML" not in text, f"{script.name}: data reaches the page only as text"
        served = client.get(f"/app/js/{script.name}")
        assert served.headers["content-type"].startswith("text/javascript")


def test_no_file_of_the_app_reaches_another_site() -> None:
    for path in APP_DIR.rglob("*"):
        if path.is_file():
            text = path.read_text()
            # XML namespaces name a spec, they fetch nothing.
            found = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
            assert not found, f"{path.name} refers to {found}"


@pytest.mark.parametrize(
    "path", ["/app/../__init__.py", "/app/%2e%2e/__init__.py", "/app/nothing.html", "/app/js"]
)
def test_only_the_app_files_are_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_workflow_the_buttons_follow_is_the_servers(client: TestClient) -> None:
    workflow = client.get("/app/workflow.json").json()
    assert workflow["transitions"] == {k: list(v) for k, v in TRANSITIONS.items()}
    assert set(workflow["dispositions"]) == {"confirmed_theft", "no_theft", "operational_issue"}
    assert "dispute" in workflow["rules"] and "incident_s" in workflow["sorts"]


def test_a_missing_app_is_said_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no index\.html"):
        web_router(tmp_path)
