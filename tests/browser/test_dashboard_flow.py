"""The dashboard as a new team member uses it, in Debian's Chromium: log in, paste a provider key,
register the seed page's model against the fake upstream, test it, chat in the playground, read
the alias table, generate a team key and use it from the openai client, revoke it, and find the
calls in the usage charts and the audit trail. Each step saves a screenshot in test-artifacts/."""
import re
from pathlib import Path

import openai
import pytest

from tests.dashboard_support import PASSWORD, make_user
from tests.fake_upstream import Reply, chunk
from webapp.extensions import db

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Chromium not installed at {CHROMIUM} "
                                       "(apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)  # a bound on waiting, generous for a busy machine
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors
    yield page
    context.close()


def ready(page):
    """Wait until the page on screen has loaded and htmx has wired it: on a slow machine a
    control used before that does nothing (a user is rarely that quick). Call it once an element
    of the new page was found, so that it is the new page's load that is waited for."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => window.htmx !== undefined")


def htmx_idle(page):
    """Wait until htmx has no request out and no swap under way: a field filled while a swap
    is still landing would be replaced by the swapped-in one (a slow machine shows it)."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_new_team_member_goes_through_the_seed_flow(app, live, upstream, seed, page):
    team_id = seed.team("Team A")
    with app.app_context():
        make_user("dana@example.com", team_id, "admin")
        db.session.commit()
    base = live.url

    page.goto(base + "/")
    page.get_by_label("Email").fill("dana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "01-login")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Your teams").wait_for()
    page.get_by_role("link", name="Team A").click()
    page.get_by_role("heading", name="Models of Team A").wait_for()

    page.get_by_role("link", name="Provider keys").click()
    page.get_by_label("Name").fill("Sweden Azure key")
    page.get_by_label("Key", exact=True).fill("sk-provider-team-a-secret-1234")
    page.get_by_role("button", name="Save key").click()
    page.get_by_text("sk-...1234").wait_for()
    shot(page, "02-provider-key")

    page.get_by_role("link", name="Models").click()
    page.get_by_role("link", name="Register a model").click()
    page.get_by_label("Public name").fill("my-team-model")
    ready(page)
    page.get_by_label("Provider", exact=True).select_option("azure")
    page.get_by_text("The Azure deployment name.").wait_for()  # fields swapped by htmx
    htmx_idle(page)
    page.get_by_label("Provider", exact=True).select_option("openai")
    page.get_by_text("Set it only to call an Azure deployment").wait_for()
    htmx_idle(page)
    page.get_by_label("Upstream model").fill("gpt-4o")
    page.get_by_label("API base URL").fill(upstream.url)
    page.get_by_label("API version").fill("2023-12-01-preview")
    page.get_by_label("Provider key", exact=True).select_option("Sweden Azure key")
    shot(page, "03-register")
    page.get_by_role("button", name="Register").click()
    page.get_by_role("heading", name="Models of Team A").wait_for()
    page.get_by_text(f"{upstream.url}/openai/deployments/gpt-4o/chat/completions"
                     "?api-version=2023-12-01-preview").wait_for()
    ready(page)

    page.get_by_role("button", name="Test my-team-model").click()
    page.get_by_text("Sunny, 22 degrees.").wait_for()
    assert upstream.received[-1].headers["api-key"] == "sk-provider-team-a-secret-1234"
    shot(page, "04-models-tested")

    upstream.reply(Reply(chunks=[chunk("Hello"), chunk(" from"), chunk(" the upstream"),
                                 chunk(None, "stop"), b"[DONE]"], chunk_delay=0.05))
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Message").fill("Say hello")
    ready(page)
    page.get_by_role("button", name="Send").click()
    page.get_by_text("Hello from the upstream").wait_for()
    page.get_by_text(re.compile(r"Done in \d+ ms")).wait_for()
    shot(page, "05-playground")

    page.get_by_role("link", name="Aliases").click()
    page.get_by_text(re.compile(rf"my-team-model → model_name_{team_id}_[0-9a-f-]{{36}}"))\
        .wait_for()
    page.get_by_label("Model name").fill("my-team-model")
    ready(page)
    page.get_by_role("button", name="Resolve").click()
    page.get_by_text("resolves through the team's alias table").wait_for()
    shot(page, "06-aliases")

    page.get_by_role("link", name="Team keys").click()
    page.get_by_label("Alias").fill("laptop")
    ready(page)
    page.get_by_role("button", name="Generate").click()
    secret = page.locator("#new-key").inner_text().strip()
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    shot(page, "07-team-key")
    client = openai.OpenAI(api_key=secret, base_url=base + "/v1", max_retries=0)
    answer = client.chat.completions.create(
        model="my-team-model", messages=[{"role": "user", "content": "Weather in Boston?"}])
    assert answer.choices[0].message.content == "Sunny, 22 degrees."

    page.get_by_role("link", name="Team keys").click()
    page.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke").wait_for()
    ready(page)
    page.get_by_role("button", name="Revoke").click()
    page.get_by_text("No keys yet.").wait_for()
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="my-team-model",
                                       messages=[{"role": "user", "content": "Again?"}])
    shot(page, "08-key-revoked")

    app.extensions["teamgate.request_log"].flush()
    page.get_by_role("link", name="Usage").click()
    row = page.locator("tr", has_text="my-team-model").first
    assert row.locator('td[data-label="Requests"]').inner_text() == "2"
    assert page.locator("svg.chart rect").count() > 0
    shot(page, "09-usage")

    page.get_by_role("link", name="Audit").click()
    page.get_by_text("model.create").wait_for()
    page.get_by_text("key.delete").wait_for()
    assert "sk-provider-team-a-secret-1234" not in page.content()
    shot(page, "10-audit")

    page.set_viewport_size({"width": 390, "height": 844})
    for link, heading in (("Audit", "Audit trail of Team A"), ("Usage", "Usage of Team A"),
                          ("Team keys", "Team keys of Team A"), ("Models", "Models of Team A")):
        page.get_by_role("link", name=link, exact=True).click()
        page.get_by_role("heading", name=heading).wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{link} is {width}px wide at 390px"
    shot(page, "11-models-390px")
    assert page.errors == [], page.errors
