"""``GET /`` and its static files: served from the package, under a strict CSP, with no
inline script or style (the browser test in tests/browser drives the page itself)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app.factory import create_app
from service.app.page import STATIC_DIR, STATIC_FILES
from service.plumbing.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    with TestClient(create_app(Settings(models_dir=tmp_path_factory.mktemp("none")))) as client:
        yield client


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.sources: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.problems += [f"{tag} {name}=" for name in names if name.startswith("on")]
        if "style" in names:
            self.problems.append(f"{tag} style=")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            if "src" not in names:
                self.problems.append("inline <script>")
            self.sources.append(str(names.get("src")))
        if tag == "link":
            self.sources.append(str(names.get("href")))


def test_the_page_is_served_with_a_strict_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"

    parser = _Inline()
    parser.feed(response.text)
    assert parser.problems == []
    # Only this server's own files: no CDN, no framework download.
    assert sorted(parser.sources) == ["/static/page.css", "/static/page.js"]


@pytest.mark.parametrize("name", sorted(STATIC_FILES))
def test_every_static_file_is_served_with_its_type(client: TestClient, name: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == STATIC_FILES[name]
    assert response.content == (STATIC_DIR / name).read_bytes()
    assert "http://" not in response.text and "https://" not in response.text


def test_only_the_page_files_are_served(client: TestClient) -> None:
    response = client.get("/static/page.py")
    assert response.status_code == 404
    assert "the page has: index.html, page.css, page.js" in response.json()["error"]["message"]
    assert client.get("/static/..%2Frouters%2Fpage.py").status_code == 404
    # Every file in the folder is one the router knows (a new file must be registered).
    assert {p.name for p in Path(STATIC_DIR).iterdir()} == set(STATIC_FILES)


def test_the_page_is_not_part_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/static/{name}" not in paths
