"""The workbench in a real headless Chromium (Debian's, via Playwright): login, an
operation's heatmap and network, a review decision found in the audit log, hostile
post texts rendered as text, Swagger UI from the package. One browser launch."""

from __future__ import annotations

import shutil

import pytest
from test_web_world import PASSWORDS, XSS_HANDLE, XSS_TEXT, build_workspace, serving

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs /usr/bin/chromium "
                       "(scripts/system-deps.sh)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = build_workspace(tmp_path_factory.mktemp("webui") / "ws.duckdb")
    with serving(ws) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(base_url=server.url)
    pg = context.new_page()
    pg.dialogs = []
    pg.problems = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(m.text))
    pg.on("response", lambda r: r.status >= 400 and pg.problems.append(f"{r.status} {r.url}"))
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    pg.on("request", lambda r: r.url.startswith(server.url) or r.url.startswith("data:")
          or pg.problems.append(f"off-site request {r.url}"))
    yield pg
    context.close()


def _login(page, name: str) -> None:
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("button[type=submit]")


def test_review_flow_heatmap_network_and_audit(page):
    page.goto("/operations/op-spam")
    assert "/login" in page.url  # login required, and it brings us back afterwards
    _login(page, "ana")
    page.wait_for_url("**/operations/op-spam")
    assert page.text_content("#op-title").startswith("Office-shift network")

    # hour-of-week heatmaps: 7 days x 24 hours, busy cells shaded
    assert page.locator("#heatmap tbody tr").count() == 7
    assert page.locator("#heatmap tbody td").count() == 168
    assert page.locator("#heatmap-local td.h8").count() >= 1
    assert page.locator("#heatmap-local tbody tr").nth(5).locator("td.h0").count() == 24
    assert page.locator("#timeline-svg rect").count() == 14

    # cytoscape drew the network from the JSON endpoint onto canvases
    page.wait_for_selector("#network[data-nodes]", timeout=15_000)
    assert int(page.get_attribute("#network", "data-nodes")) == 10
    assert int(page.get_attribute("#network", "data-edges")) > 10
    assert page.locator("#network canvas").count() >= 1

    # kill-chain and DISARM tags, each with its evidence
    assert page.locator("#killchain tbody tr").count() >= 2
    assert page.locator("#disarm td", has_text="T0150.008").count() == 1

    # the hostile narrative example is shown as text, nothing ran
    assert page.locator("blockquote", has_text=XSS_TEXT).count() == 1
    assert page.locator("img[src=x]").count() == 0

    # take one asset out before confirming
    row = page.locator("#members-table tr", has_text="truthpage")
    row.locator("input[name=note]").fill("a real local page the network shared")
    row.locator("button", has_text="Exclude").click()
    page.wait_for_url("**/operations/op-spam#members")
    assert "excluded" in page.locator("#members-table tr", has_text="truthpage").get_attribute(
        "class")
    assert page.locator("#members-table tr.excluded").count() == 1

    page.check("input[name=decision][value=confirmed]")
    page.fill("textarea[name=note]", "office shifts and copy-paste texts: confirmed")
    page.click("#review-submit")
    page.wait_for_url("**/operations/op-spam#review")
    assert page.locator("#op-title .badge").text_content() == "confirmed"
    assert page.locator("#reviews td", has_text="office shifts and copy-paste").count() == 1

    page.goto("/audit")
    row = page.locator("#audit tbody tr", has_text="review.confirmed")
    assert row.count() == 1
    assert "operation:op-spam" in row.text_content()
    assert "ana" in row.text_content()
    assert "office shifts and copy-paste texts: confirmed" in row.text_content()
    excl = page.locator("#audit tbody tr", has_text="review.exclude_asset")
    assert "facebook/fbpage: a real local page the network shared" in excl.text_content()
    assert page.dialogs == []
    assert page.problems == [], page.problems


def test_hostile_posts_and_handles_render_as_text(page):
    page.goto("/login")
    _login(page, "vic")
    page.wait_for_url("**/")
    page.goto("/posts?q=onerror")
    assert page.locator("#post-results td.text", has_text=XSS_TEXT).count() == 2
    page.goto("/assets/facebook/fb0")
    assert page.text_content("#asset-title").startswith(XSS_HANDLE)
    page.goto("/status")
    assert page.locator("#quarantine td", has_text=XSS_TEXT).count() == 1
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("script:not([src])").count() == 0
    # a viewer sees no review form
    page.goto("/operations/op-small")
    assert page.locator("form.review-form").count() == 0
    page.wait_for_selector("#network[data-nodes]", timeout=15_000)
    assert page.dialogs == []
    assert page.problems == [], page.problems


def test_swagger_ui_served_from_package(page):
    page.goto("/login?next=/docs")
    _login(page, "vic")
    page.wait_for_url("**/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
    assert page.locator(".opblock-summary-path", has_text="/api/operations").count() >= 1
    assert page.problems == [], page.problems

