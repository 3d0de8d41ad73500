"""Accessibility of every main page of the app, checked with axe-core (npm) in Debian's chromium
against a real `roleplay serve` with a small seeded history (roleplay.bench.web.seed): no
`serious` or `critical` finding on any page. What axe found on each page, of any impact, is
printed (pytest -s shows it)."""

from __future__ import annotations

import numpy as np
import pytest
from browser import axe_source, launch, sign_in

from roleplay.audio.clip import Audio, save_wav
from roleplay.bench.web import PASSWORD, seed, serve
from roleplay.core.constants import RATE_HZ

playwright_api = pytest.importorskip("playwright.sync_api")

# (role, page); {call}, {scenario} and {trainee} are filled in from the seeded history
PAGES = [
    ("anonymous", "/login"),
    ("trainee", "/"), ("trainee", "/scenarios"), ("trainee", "/scenarios/{scenario}"),
    ("trainee", "/call/{scenario}"), ("trainee", "/call/{scenario}/browser"), ("trainee", "/calibration"),
    ("trainee", "/calls"),
    ("trainee", "/calls/{call}"), ("trainee", "/calls/{call}/report"), ("trainee", "/progress"),
    ("trainee", "/forget"), ("trainee", "/settings"), ("trainee", "/settings/devices"),
    ("trainer", "/"), ("trainer", "/group"), ("trainer", "/trainees/{trainee}"), ("trainer", "/calls/{call}"),
    ("trainer", "/scenarios/editor"), ("trainer", "/scenarios/import"),
    ("admin", "/"), ("admin", "/admin/users"), ("admin", "/admin/groups"), ("admin", "/admin/settings"),
    ("admin", "/admin/access-log"),
]
BLOCKING = ("serious", "critical")

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + " :: "
                                   + n.failureSummary.split("\\n").slice(0, 2).join(" "))}));
}"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("a11y")
    seeded = seed(root / "history.sqlite3", root / "seeded-calls", trainees=3, calls=24, trainers=1)
    data_home = root / "data"
    # a calibration, so that the call page shows its Call button and meters
    calibration = data_home / "roleplay" / "trainees" / seeded.trainees[0] / "calibration.wav"
    calibration.parent.mkdir(parents=True)
    save_wav(calibration, Audio(np.zeros(RATE_HZ, np.float32), RATE_HZ))
    with serve(seeded.db, root / "calls", env={"XDG_DATA_HOME": str(data_home)}, log=root / "server.log") as server:
        yield server, seeded


@pytest.fixture(scope="module")
def pages(app):
    """A signed-in browser page per role (and one signed out), with axe's script ready."""
    server, seeded = app
    source = axe_source()
    users = {"anonymous": None, "trainee": seeded.trainees[0], "trainer": seeded.trainers[0], "admin": seeded.admin}
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        out = {}
        for role, name in users.items():
            # the app's policy allows no inline script: axe comes in past it, as an extension's would
            context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            if name is not None:
                sign_in(page, server.url, name, PASSWORD)
            out[role] = page
        yield out, source
        browser.close()


@pytest.mark.parametrize(("role", "path"), PAGES, ids=[f"{r}:{p}" for r, p in PAGES])
def test_no_serious_accessibility_problems(app, pages, role, path):
    server, seeded = app
    by_role, source = pages
    url = server.url + path.format(call=seeded.call_id, scenario=seeded.scenario_id, trainee=seeded.trainees[0])
    page = by_role[role]
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url}: {response and response.status}"
    page.add_script_tag(content=source)
    found = page.evaluate(RUN_AXE)
    for v in found:
        print(f"axe {role} {path}: {v['impact']} {v['id']}: {v['help']}")
        for node in v["nodes"]:
            print(f"    {node}")
    blocking = [v for v in found if v["impact"] in BLOCKING]
    assert not blocking, f"{path} as {role}: " + "; ".join(f"{v['impact']} {v['id']} at {v['nodes']}" for v in blocking)
