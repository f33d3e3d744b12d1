"""The HTML report in a real browser: Debian's headless Chromium driven by Playwright.

Install the browser with ``scripts/install-chromium.sh`` (apt-get; Playwright never downloads one).
The page is opened from a file with every network request blocked and recorded.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from lossconf.reports.html import render_html

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"{CHROMIUM} is absent; run scripts/install-chromium.sh (needs root and apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def opened(browser, tmp_path):
    """(page, results, network attempts, dialogs) for a freshly rendered synthetic report."""
    from test_report import synthetic_results  # the shared synthetic results (tests/ is on sys.path)

    results = synthetic_results()
    path = render_html(results, tmp_path / "report.html")
    url = path.as_uri()
    attempts: list[str] = []
    dialogs: list[str] = []
    context = browser.new_context(viewport={"width": 1366, "height": 900})

    def route(r):
        if r.request.url.split("#")[0] == url:
            r.continue_()
        else:
            attempts.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("request", lambda req: req.url.split("#")[0] != url and attempts.append(req.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_load_state("load")
    yield page, results, attempts, dialogs
    context.close()


def test_counts_in_the_page_match_the_results(opened):
    page, results, attempts, _ = opened
    expected = Counter((c["adapter"], c["verdict"]) for c in results["checks"])
    for adapter, counts in results["summary"]["by_adapter"].items():
        for verdict, n in counts.items():
            shown = page.locator(f'#counts td[data-adapter="{adapter}"][data-verdict="{verdict}"]').inner_text()
            assert int(shown) == n == expected[(adapter, verdict)]
    assert int(page.locator("#total").inner_text()) == results["summary"]["total"]
    cell_total = page.eval_on_selector_all("td.cell", "cs => cs.reduce((s, c) => s + Number(c.dataset.n), 0)")
    assert cell_total == results["summary"]["total"]
    assert attempts == []


def test_clicking_a_failing_cell_opens_its_details(opened):
    page, _, _, _ = opened
    link = page.locator('td.cell[data-worst="fail"] a.cell-link').first
    target = link.get_attribute("href")[1:]
    details = page.locator(f"details#{target}")
    assert details.get_attribute("open") is None
    link.click()
    page.wait_for_function("id => document.getElementById(id).open", arg=target)
    assert details.locator(".check").first.is_visible()
    assert "fail" in details.locator("> summary").inner_text()


def test_framework_filter_hides_other_rows(opened):
    page, _, _, _ = opened
    rows = page.locator("tr.impl-row")
    total = rows.count()
    torch_rows = page.locator('tr.impl-row[data-adapter="torch"]').count()
    assert 0 < torch_rows < total
    page.select_option("#f-adapter", "torch")
    assert page.locator("tr.impl-row:visible").count() == torch_rows
    assert page.locator('tr.impl-row[data-adapter="jax"]').first.is_hidden()
    page.select_option("#f-verdict", "fail")
    visible = page.locator("tr.impl-row:visible")
    assert 0 < visible.count() < torch_rows
    for i in range(visible.count()):
        assert "fail" in visible.nth(i).get_attribute("data-verdicts").split()
    page.select_option("#f-adapter", "")
    page.select_option("#f-verdict", "")
    assert page.locator("tr.impl-row:visible").count() == total


def test_script_in_an_error_message_is_text_and_never_runs(opened):
    page, _, attempts, dialogs = opened
    page.locator('td.cell[data-worst="error"] a.cell-link').first.click()
    message = page.locator('.check[data-check="jax:softmax_cross_entropy-float16-edge_gap_1e4-value"] .message')
    assert "<script>alert(1)</script>" in message.inner_text()
    page.locator("details.cell-details").evaluate_all("ds => ds.forEach(d => d.open = true)")
    assert dialogs == []
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("document.scripts.length") == 1
    assert attempts == []


def test_screenshot(opened):
    page, _, attempts, _ = opened
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator('td.cell[data-worst="fail"] a.cell-link').first.click()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
    assert attempts == []


def test_print_media_expands_every_details(opened):
    page, _, _, _ = opened
    check = page.locator("details.cell-details .check").first
    assert check.is_hidden()
    page.emulate_media(media="print")
    assert check.is_visible()
    assert page.locator("details.repro pre.code").first.is_visible()
