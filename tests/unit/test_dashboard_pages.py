"""The dashboard's pages in Streamlit's AppTest: sign-in, the runs list and the run debugger,
each organization seeing only its own runs. Data is made through the service layer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from streamlit_app.components.text import md

ROUTER = str(Path(__file__).resolve().parents[2] / "streamlit_app" / "router.py")
PASSWORD = "correct-horse-battery"


@dataclass
class SeededOrg:
    id: str
    name: str
    run_ids: dict[str, str] = field(default_factory=dict)  # label -> run id


def _workflow(name: str, slug: str) -> dict:
    return {
        "name": name,
        "slug": slug,
        "status": "active",
        "trigger": {"type": "event", "config": {"eventType": f"{slug}.go"}},
        "steps": [
            {
                "id": "fetch",
                "name": "Fetch",
                "type": "action",
                "config": {"action": "transform", "output": {"ok": True}},
            },
            {
                "id": "store",
                "name": "Store",
                "type": "action",
                "config": {"action": "transform", "output": {"ok": True}},
            },
        ],
    }


def _seed_org(session, *, name: str, slug: str, member_ids: list[str]) -> SeededOrg:
    """An org with a workflow and three runs: completed, failed, and running with a retry."""
    from orbin_flows.workflows import create_workflow
    from tenancy import runs as runs_repo
    from tenancy import steps as steps_repo
    from tenancy.clock import now_ms
    from tenancy.orgs import add_member, create_organization
    from tenancy.principal import system_principal

    org = create_organization(session, name=name, slug=slug)
    for user_id in member_ids:
        add_member(session, organization_id=org.id, user_id=user_id, role="owner")
    wf = create_workflow(
        session, system_principal(org.id, org.slug, org.plan), _workflow(f"{name} sync", slug)
    )
    seeded = SeededOrg(org.id, name)

    def run(label: str) -> object:
        r = runs_repo.create_run(
            session,
            organization_id=org.id,
            workflow=wf,
            trigger_type="event",
            trigger_data={"type": f"{slug}.go", "data": {"label": label}},
        )
        runs_repo.mark_run_running(session, run=r, worker_id="test", lease_ms=60_000)
        seeded.run_ids[label] = r.id
        return r

    def step(r, step_id: str, status: str, **kw) -> None:
        rec = steps_repo.start_step(
            session,
            run=r,
            step_id=step_id,
            step_name=step_id.title(),
            step_type="action",
            attempt=kw.pop("attempt", 1),
            max_attempts=3,
            input={"step": step_id, "org": slug},
        )
        steps_repo.finish_step(session, step=rec, status=status, **kw)

    done = run("completed")
    step(done, "fetch", "completed", output={"rows": 3, "org": slug})
    step(done, "store", "completed", output={"stored": f"{slug}-ok"})
    runs_repo.finish_run(session, run=done, status="completed", result={"stored": 3})

    failed = run("failed")
    step(failed, "fetch", "completed", output={"rows": 0})
    err = {"message": "store exploded", "stack": "Traceback (most recent call last):\nKeyError"}
    step(failed, "store", "failed", error=err)
    runs_repo.finish_run(session, run=failed, status="failed", error=err)

    retrying = run("retrying")
    step(
        retrying,
        "fetch",
        "retrying",
        error={"message": "HTTP 503"},
        next_retry_at=now_ms() + 30_000,
    )
    return seeded


@dataclass
class Seed:
    alpha: SeededOrg
    beta: SeededOrg
    emails: dict[str, str]


@pytest.fixture
def seed(database: str) -> Seed:
    """Alpha and Beta: alice is in Alpha, bob in Beta, carol in both."""
    from tenancy.db import session_scope
    from tenancy.orgs import create_user

    with session_scope() as session:
        users = {
            n: create_user(session, email=f"{n}@example.com", name=n.title(), password=PASSWORD)
            for n in ("alice", "bob", "carol")
        }
        alpha = _seed_org(
            session, name="Alpha", slug="alpha", member_ids=[users["alice"].id, users["carol"].id]
        )
        beta = _seed_org(
            session, name="Beta", slug="beta", member_ids=[users["bob"].id, users["carol"].id]
        )
    return Seed(alpha, beta, {n: u.email for n, u in users.items()})


def signed_in(email: str, password: str = PASSWORD) -> AppTest:
    at = AppTest.from_file(ROUTER, default_timeout=30)
    at.run()
    at.text_input(key="login.email").input(email)
    at.text_input(key="login.password").input(password)
    at.button[0].click()
    at.run()
    return at


def on_runs(email: str) -> AppTest:
    """Signed in, on the runs page (the overview is the default page)."""
    at = signed_in(email)
    at.switch_page("app_pages/runs.py").run()
    return at


ROW_RE = re.compile(
    r'<tr data-run-id="([^"]+)">.*?data-status="([a-z_]+)".*?<td><a [^>]+>([^<]*)</a></td>', re.S
)


def table_rows(at: AppTest) -> list[tuple[str, str, str]]:
    """(run id, status, workflow name) of each row of the runs table, top to bottom."""
    tables = [h.value for h in at.html if 'class="orbin-runs"' in h.value]
    assert len(tables) == 1, "the runs table is not shown"
    return ROW_RE.findall(tables[0])


def shown_run_ids(at: AppTest) -> set[str]:
    return {run_id for run_id, _, _ in table_rows(at)}


def test_wrong_password_is_refused_and_shows_nothing_of_any_org(seed: Seed) -> None:
    at = signed_in(seed.emails["alice"], "not-the-password")
    assert not at.exception
    assert [e.value for e in at.error] == ["Wrong email or password."]
    assert not at.metric and not any("orbin-runs" in m.value for m in at.markdown)
    assert "Runs" not in [t.value for t in at.title]


def test_right_password_shows_the_orgs_runs_newest_first_with_names(seed: Seed) -> None:
    at = on_runs(seed.emails["alice"])
    assert not at.exception
    assert [t.value for t in at.title] == ["Runs"]
    alpha = seed.alpha.run_ids
    assert table_rows(at) == [
        (alpha["retrying"], "running", "Alpha sync"),
        (alpha["failed"], "failed", "Alpha sync"),
        (alpha["completed"], "completed", "Alpha sync"),
    ]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Runs, last 24 h"] == "3"
    assert metrics["Failed"] == "1" and metrics["Completed"] == "1" and metrics["Running"] == "1"


def test_a_user_of_one_org_never_sees_another_orgs_runs(seed: Seed) -> None:
    alice = on_runs(seed.emails["alice"])
    assert shown_run_ids(alice) == set(seed.alpha.run_ids.values())
    assert not [b for b in alice.selectbox if b.key == "shell.org"], "one org: no switcher"
    bob = on_runs(seed.emails["bob"])
    assert shown_run_ids(bob) == set(seed.beta.run_ids.values())


def test_status_filter_keeps_only_that_status(seed: Seed) -> None:
    at = on_runs(seed.emails["alice"])
    at.pills(key="runs.status").set_value(["failed"]).run()
    assert shown_run_ids(at) == {seed.alpha.run_ids["failed"]}


def test_org_switcher_shows_the_chosen_orgs_runs_only(seed: Seed) -> None:
    at = on_runs(seed.emails["carol"])
    switcher = at.selectbox(key="shell.org")
    assert switcher.value == seed.alpha.id  # memberships sorted by org name
    assert shown_run_ids(at) == set(seed.alpha.run_ids.values())
    switcher.set_value(seed.beta.id).run()
    assert shown_run_ids(at) == set(seed.beta.run_ids.values())


def test_deep_link_opens_the_run_debugger(seed: Seed) -> None:
    at = on_runs(seed.emails["alice"])
    at.query_params["run"] = seed.alpha.run_ids["failed"]  # the runs page's old deep link
    at.run()
    assert not at.exception
    assert seed.alpha.run_ids["failed"] in at.markdown[0].value
    at = signed_in(seed.emails["alice"])  # /run?id=<run>
    at.switch_page("app_pages/run_detail.py")
    at.query_params["id"] = seed.alpha.run_ids["failed"]
    at.run()
    header = at.markdown[0].value
    assert seed.alpha.run_ids["failed"] in header and 'data-status="failed"' in header
    steps = at.radio(key="run_detail.step")
    assert [o.rsplit(" · ", 1)[0] for o in steps.options] == [
        "**Fetch** · ✓ Completed · attempt 1/3",
        "**Store** · ✕ Failed · attempt 1/3",
    ]
    assert all(re.search(r" · \d+ ms$", o) for o in steps.options), steps.options
    assert steps.value == "store", "a failed run opens on its failed step"
    assert [e.value for e in at.error][:2] == ["**Run failed:** store exploded", "store exploded"]
    assert at.code[0].value == seed.alpha.run_ids["failed"]  # the id, with a copy button
    assert any("KeyError" in c.value for c in at.code)
    steps.set_value("fetch").run()
    assert '{"rows": 0}' in [j.value for j in at.json]


def test_run_detail_shows_retry_countdown_and_attempts(seed: Seed) -> None:
    at = on_runs(seed.emails["alice"])
    at.query_params["run"] = seed.alpha.run_ids["retrying"]
    at.run()
    assert not at.exception
    options = at.radio(key="run_detail.step").options
    assert options[0].startswith("**Fetch** · ↻ Retrying · attempt 1/3")
    assert re.search(r" · retry in (2\d|30) s$", options[0]), options[0]
    assert options[1] == "**Store** · ◷ Pending"
    assert any(w.value.startswith("Retrying in ") for w in at.warning)


def test_another_orgs_run_id_is_refused(seed: Seed) -> None:
    at = on_runs(seed.emails["alice"])
    foreign = seed.beta.run_ids["completed"]
    at.query_params["run"] = foreign
    at.run()
    assert [e.value for e in at.error] == [f"Run {md(foreign)} was not found in Alpha."]
    assert not at.radio and not at.json
    assert all("beta" not in m.value for m in at.markdown)


def test_a_malformed_run_id_is_refused_without_markdown(seed: Seed) -> None:
    at = on_runs(seed.emails["alice"])
    at.query_params["run"] = "![x](http://elsewhere.example/pixel.png)"
    at.run()
    [error] = [e.value for e in at.error]
    assert "was not found in Alpha" in error and "![" not in error and "](" not in error


def test_sign_out_returns_to_the_sign_in_page(seed: Seed) -> None:
    at = signed_in(seed.emails["alice"])
    at.button(key="shell.sign_out").click().run()
    assert [t.value for t in at.title] == ["Sign in to Orbin"]
    assert not at.metric and "shell.user" not in at.session_state


def test_a_suspended_run_shows_its_badge_and_when_it_resumes(seed: Seed) -> None:
    from tenancy import runs as runs_repo
    from tenancy import steps as steps_repo
    from tenancy import workflows as workflows_repo
    from tenancy.clock import now_ms
    from tenancy.db import session_scope

    with session_scope() as session:
        old = runs_repo.read_run(
            session, organization_id=seed.alpha.id, run_id=seed.alpha.run_ids["completed"]
        )
        wf = workflows_repo.read_workflow(
            session, organization_id=seed.alpha.id, workflow_id=old.workflow_id
        )
        run = runs_repo.create_run(
            session, organization_id=seed.alpha.id, workflow=wf, trigger_type="manual",
            trigger_data={},
        )  # fmt: skip
        runs_repo.mark_run_running(session, run=run, worker_id="test", lease_ms=60_000)
        resume_at = now_ms() + 7_170_000
        steps_repo.record_waiting_step(
            session, run=run, step_id="fetch", step_name="Fetch", input={}, resume_at=resume_at
        )
        runs_repo.suspend_run(session, run=run, resume_at=resume_at)
        run_id = run.id
    at = signed_in(seed.emails["alice"])
    at.switch_page("app_pages/run_detail.py")
    at.query_params["id"] = run_id
    at.run()
    assert not at.exception
    assert 'data-status="suspended"' in at.markdown[0].value and "Suspended" in at.markdown[0].value
    assert any("resumes in 1 h 59 min" in i.value for i in at.info), [i.value for i in at.info]
