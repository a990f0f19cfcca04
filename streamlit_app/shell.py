"""What every page shares: who is signed in, which organization is shown, the sidebar.

Behind the server's gate (streamlit_app.py) the user comes from the session cookie; a bare
``streamlit run router.py`` (and AppTest) falls back to the token the sign-in page kept. Either
way it is identity's server-side session, checked again on every run.
Pages ask for ``current_org()`` and never render anything of an organization without it.
"""

from __future__ import annotations

import streamlit as st

from streamlit_app import accounts, session_cookie
from streamlit_app.accounts import Membership, SignedInUser
from streamlit_app.components.text import md
from streamlit_app.services.base import Actor, Outcome
from tenancy.config import get_settings
from tenancy.principal import ROLE_RANK

USER_KEY = "shell.user"
ORG_KEY = "shell.org"
MEMBERSHIP_KEY = "shell.membership"
SIGNED_IN_BY_COOKIE_KEY = "shell.by_cookie"
TOKEN_KEY = "shell.token"
FLASH_KEY = "shell.flash"


def _cookie_token() -> str | None:
    token = dict(st.context.cookies).get(session_cookie.COOKIE_NAME)
    return token if isinstance(token, str) else None


def session_token() -> str | None:
    """The session this browser tab acts with: the cookie's, else the sign-in page's."""
    return _cookie_token() or st.session_state.get(TOKEN_KEY)


def signed_in_user() -> SignedInUser | None:
    """The user of the live session, asked of identity on every run: signing out anywhere, a
    new password or an operator's reset ends it here at the next run."""
    by_cookie = _cookie_token() is not None
    token = session_token()
    user = accounts.current_user(token) if token else None
    if user is None:
        sign_out(revoke=False)
        return None
    st.session_state[USER_KEY] = user
    st.session_state[SIGNED_IN_BY_COOKIE_KEY] = by_cookie
    return user


def has_session_cookie() -> bool:
    return _cookie_token() is not None


def remember_sign_in(token: str) -> None:
    st.session_state[TOKEN_KEY] = token


def signed_in_by_cookie() -> bool:
    return bool(st.session_state.get(SIGNED_IN_BY_COOKIE_KEY))


def choose_org(memberships: list[Membership]) -> Membership:
    """The org switcher (shown when the user belongs to several); remembers the choice."""
    by_id = {m.organization_id: m for m in memberships}
    if st.session_state.get(ORG_KEY) not in by_id:
        st.session_state[ORG_KEY] = memberships[0].organization_id
    st.sidebar.markdown("### Orbin")
    if len(memberships) == 1:
        st.sidebar.markdown(f"**{md(memberships[0].name)}**")
    else:
        st.sidebar.selectbox(
            "Organization",
            options=list(by_id),
            format_func=lambda org_id: by_id[org_id].name,
            key=ORG_KEY,
        )
    membership = by_id[st.session_state[ORG_KEY]]
    st.session_state[MEMBERSHIP_KEY] = membership
    return membership


def still_member(membership: Membership) -> None:
    """For live fragments, which rerun without the router: stop when access was withdrawn
    (the session ended, the user was removed, the organization now requires MFA)."""
    token = session_token()
    if not token or not accounts.is_member(token, membership.organization_id):
        st.rerun(scope="app")


def current_org() -> Membership:
    """The organization the router checked this run; a page reached any other way stops."""
    membership = st.session_state.get(MEMBERSHIP_KEY)
    if membership is None:
        st.error("Sign in to see this page.")
        st.stop()
    return membership


def sign_out(*, revoke: bool = True) -> None:
    """Forget the user in this tab; ``revoke`` ends the sign-in page's session server-side
    (the cookie's is ended by the server's /signout, which also clears the cookie)."""
    token = st.session_state.pop(TOKEN_KEY, None)
    if revoke and token:
        accounts.sign_out(token)
    for key in (USER_KEY, ORG_KEY, MEMBERSHIP_KEY, SIGNED_IN_BY_COOKIE_KEY):
        st.session_state.pop(key, None)


def notifications_bell(user: SignedInUser, membership: Membership) -> None:
    """Unread count, the newest notifications with their links, mark all read."""
    from streamlit_app.services import shell as shell_service

    unread, items = shell_service.notifications(membership.organization_id, user.id)
    with st.popover(f"🔔 {unread}" if unread else "🔔", help="Notifications"):
        if not items:
            st.caption("No notifications yet: failed runs and usage alerts will show here.")
        for n in items:
            dot = "● " if not n.read else ""
            link = f" · [open]({n.link})" if n.link and n.link.startswith("/") else ""
            st.markdown(f"{dot}**{md(n.title)}**{link}")
            st.caption(md(n.message))
        if unread and st.button("Mark all read", key="shell.mark_read"):
            shell_service.mark_all_read(membership.organization_id, user.id)
            st.rerun()


def user_menu(user: SignedInUser, membership: Membership) -> None:
    from streamlit_app.components.palette import command_palette
    from streamlit_app.services import shell as shell_service

    with st.sidebar:
        notifications_bell(user, membership)
        command_palette(shell_service.jump_targets(membership.organization_id))
        st.caption("Ctrl/⌘ K: jump to a page, workflow or run")
        if ROLE_RANK.get(membership.role, 0) >= ROLE_RANK["admin"]:
            ui = get_settings().prefect_api_url.removesuffix("/api")
            st.markdown(
                f'<a href="{ui}" target="_blank">Prefect UI (operators)</a>', unsafe_allow_html=True
            )
        st.caption(f"Signed in as **{md(user.name)}** · {membership.role}")
        if signed_in_by_cookie():
            # A real form post: the server clears the HttpOnly cookie, which no script can.
            st.markdown(
                '<form method="post" action="/signout" target="_self">'
                '<button type="submit" class="orbin-signout">Sign out</button></form>',
                unsafe_allow_html=True,
            )
        elif st.button("Sign out", key="shell.sign_out"):
            sign_out()
            st.rerun()


def current_user() -> SignedInUser:
    user = st.session_state.get(USER_KEY)
    if user is None:
        st.error("Sign in to see this page.")
        st.stop()
    return user


def actor() -> Actor:
    """The signed-in user acting in the organization shown: every action goes through it."""
    return Actor(current_user().id, current_org().organization_id)


def may(minimum_role: str) -> bool:
    """For hiding or disabling what the role may not do (the service layer refuses it anyway)."""
    return ROLE_RANK.get(current_org().role, 0) >= ROLE_RANK[minimum_role]


def report(outcome: Outcome) -> bool:
    """Show an action's outcome; remembered across the rerun that follows a successful one."""
    if outcome.ok:
        st.session_state[FLASH_KEY] = outcome.message
        return True
    st.error(outcome.message)
    for d in outcome.value or []:
        if isinstance(d, dict) and d.get("path") is not None:
            st.caption(f"`{d.get('path')}`: {d.get('message', '')}")
    return False


def flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.toast(message)
