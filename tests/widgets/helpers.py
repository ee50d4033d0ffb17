"""Seed data and app set-up for the widget tests, over the embedded instance.

The records are inserted straight into the instance's store, then the
knowledge index is synced through the real client, so every test reads the
platform over a real socket the way the sidecar does in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config.secrets import Secret

JWT_SECRET = "widget-tests-jwt-secret-0123456789abcdef"

# Words from the seeded case; the public and the restricted articles both match them.
CASE_SHORT_DESCRIPTION = "Customer cannot reset password after card fraud alert"
CASE_DESCRIPTION = (
    "The customer got a card fraud alert by text message, then the password reset link "
    "in the email did not work. They want to reset the password and unlock the account."
)

UNSAFE_HTML = (
    '<p>Send the customer a new password reset link.</p>'
    '<script>document.title = "owned"</script>'
    '<p onclick="steal()">Check the <a href="javascript:alert(1)">reset</a> page and the '
    '<a href="/kb_view.do?sys_kb_id=0">related article</a>.</p>'
    '<img src="https://evil.example/track.png" alt="tracker">'
    '<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">'
    '<img src="/sys_attachment.do?sys_id=1" alt="platform image" onerror="steal()">'
)


@dataclass
class Seeded:
    """The sys_ids of the seeded records, by the short names the tests use."""

    users: dict[str, dict] = field(default_factory=dict)
    articles: dict[str, dict] = field(default_factory=dict)
    bases: dict[str, dict] = field(default_factory=dict)
    case: dict = field(default_factory=dict)
    other_case: dict = field(default_factory=dict)


def seed_platform(store: Any) -> Seeded:
    """Insert agents, groups, two knowledge bases (one restricted to a fraud group), articles and cases."""
    seeded = Seeded()
    roles = {name: store.insert("sys_user_role", {"name": name}) for name in ("itil", "admin", "inward_admin")}
    fraud_group = store.insert("sys_user_group", {"name": "Fraud Operations", "active": "true"})

    def add_user(key: str, name: str, role_names: list[str], groups: list[dict]) -> None:
        user = store.insert("sys_user", {"user_name": key, "name": name, "email": f"{key}@example.com",
                                          "active": "true"})
        for role_name in role_names:
            store.insert("sys_user_has_role", {"user": user["sys_id"], "role": roles[role_name]["sys_id"]})
        for group in groups:
            store.insert("sys_user_grmember", {"user": user["sys_id"], "group": group["sys_id"]})
        seeded.users[key] = user

    add_user("alice.agent", "Alice Agent", ["itil"], [])
    add_user("frank.fraud", "Frank Fraud", ["itil"], [fraud_group])
    add_user("ada.admin", "Ada Admin", ["itil", "admin"], [])
    # inward_admin may see explain output but, unlike admin, does not bypass user criteria.
    add_user("ian.inward", "Ian Inward", ["itil", "inward_admin"], [])
    add_user("carl.customer", "Carl Customer", [], [])

    fraud_criteria = store.insert("user_criteria", {"name": "Fraud Operations team", "group": fraud_group["sys_id"]})
    seeded.bases["public"] = store.insert("kb_knowledge_base", {"title": "Help Center"})
    seeded.bases["fraud"] = store.insert("kb_knowledge_base", {"title": "Fraud Operations Handbook"})
    store.insert("kb_uc_can_read_mtom", {"kb_knowledge_base": seeded.bases["fraud"]["sys_id"],
                                         "user_criteria": fraud_criteria["sys_id"]})

    def add_article(key: str, base: str, title: str, text: str) -> None:
        seeded.articles[key] = store.insert("kb_knowledge", {
            "short_description": title, "text": text, "workflow_state": "published", "active": "true",
            "kb_knowledge_base": seeded.bases[base]["sys_id"], "article_type": "text",
        })

    add_article("reset", "public", "Reset a customer password", UNSAFE_HTML)
    add_article("unlock", "public", "Unlock an account after too many password attempts",
                "<p>Unlock the account, then ask the customer to reset the password.</p>")
    add_article("shipping", "public", "Track a delayed shipment",
                "<p>Look up the carrier tracking number on the order.</p>")
    wide_row = "".join(f"<td>Region{n}-zone-rate-with-a-long-unbroken-label</td>" for n in range(8))
    add_article("wide", "public", "Return shipping rates by region",
                f"<table><tr>{wide_row}</tr></table><pre>{'x' * 300}</pre>")
    add_article("fraud", "fraud", "Card fraud alert: secret verification script",
                "<p>Confidential: verify the card fraud alert, then reset the password with the fraud desk.</p>")

    seeded.case = store.insert("incident", {"short_description": CASE_SHORT_DESCRIPTION,
                                            "description": CASE_DESCRIPTION, "active": "true",
                                            "caller_id": seeded.users["carl.customer"]["sys_id"]})
    seeded.other_case = store.insert("incident", {"short_description": "Order arrived damaged",
                                                  "description": "The box was crushed.", "active": "true"})
    return seeded


def widget_settings(instance: Any, tmp_path: Any, *, dev_mode: bool = False) -> Any:
    """Return settings pointing at the instance, with the store and index under tmp_path."""
    settings = instance.platform_settings()
    return settings.replace(
        server=settings.server.replace(dev_mode=dev_mode),
        auth=settings.auth.replace(jwt_secret=Secret(JWT_SECRET)),
        store=settings.store.replace(url=f"sqlite:///{tmp_path}/state/inward.db"),
        index=settings.index.replace(path=str(tmp_path / "index")),
    )


def build_app(settings: Any) -> tuple[Any, Any]:
    """Create the store, sync the index from the instance and return (app, services)."""
    from inward.app import create_app
    from inward.services import Services
    from knowledge.sync import sync_knowledge

    services = Services(settings)
    services.store.upgrade()
    sync_knowledge(services, full=True)
    return create_app(settings, services=services), services


def token_for(settings: Any, user_name: str) -> str:
    """Mint an agent token the way the platform's JWT provider would."""
    from inward.auth import mint_token

    return mint_token(settings, user_name)
