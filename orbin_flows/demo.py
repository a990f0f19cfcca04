"""The demo organization seeded on first start: an owner login, a key, a workflow."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from orbin_flows.workflows import create_workflow
from tenancy.db import Session
from tenancy.errors import NotFound
from tenancy.keys import create_api_key
from tenancy.orgs import add_member, create_organization, create_user, read_organization_by_slug
from tenancy.principal import system_principal

DEMO_EMAIL = "demo@orbin.local"

HELLO_WORKFLOW = {
    "name": "Hello",
    "slug": "hello",
    "description": "Greets whoever a demo.hello event names.",
    "status": "active",
    "trigger": {"type": "event", "config": {"eventType": "demo.hello"}},
    "steps": [
        {
            "id": "greet",
            "name": "Greet",
            "type": "action",
            "config": {
                "action": "transform",
                "output": {"message": "Hello {{ trigger.data.name | default('world') }}!"},
            },
        },
        {
            "id": "summarize",
            "name": "Summarize",
            "type": "action",
            "config": {
                "action": "transform",
                "output": {
                    "greeting": "{{ steps.greet.output.message }}",
                    "eventType": "{{ trigger.type }}",
                },
            },
        },
    ],
}


@dataclass
class DemoSeed:
    created: bool
    email: str
    password: str | None = None
    api_key: str | None = None


def seed_demo(session: Session) -> DemoSeed:
    try:
        read_organization_by_slug(session, "demo")
        return DemoSeed(created=False, email=DEMO_EMAIL)
    except NotFound:
        pass
    org = create_organization(session, name="Demo", slug="demo", plan="free")
    password = secrets.token_urlsafe(12)
    user = create_user(session, email=DEMO_EMAIL, name="Demo Owner", password=password)
    add_member(session, organization_id=org.id, user_id=user.id, role="owner")
    key = create_api_key(
        session, organization_id=org.id, name="demo", type="secret", created_by=user.id
    )
    create_workflow(session, system_principal(org.id, org.slug, org.plan), HELLO_WORKFLOW)
    return DemoSeed(created=True, email=DEMO_EMAIL, password=password, api_key=key.plaintext)
