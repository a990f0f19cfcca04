"""What every page shares: who is signed in, which organization is shown, the sidebar.

Behind the server's gate (streamlit_app.py) the user comes from the signed session cookie; a
bare ``streamlit run router.py`` (and AppTest) falls back to the sign-in page's session state.
Pages ask for ``current_org()`` and never render anything of an organization without it.
"""

from __future__ import annotations

import streamlit as st

from streamlit_app import accounts, session_cookie
from streamlit_app.accounts import Membership, SignedInUser
from streamlit_app.components.text import md
from tenancy.clock import now_ms

USER_KEY = "shell.user"
ORG_KEY = "shell.org"
MEMBERSHIP_KEY = "shell.membership"
SIGNED_IN_BY_COOKIE_KEY = "shell.by_cookie"


def _session_token() -> str | None:
    token = dict(st.context.cookies).get(session_cookie.COOKIE_NAME)
    return token if isinstance(token, str) else None


def signed_in_user() -> SignedInUser | None:
    token = _session_token()
    if token:
        # Behind the gate the cookie alone decides, on every run (it may expire meanwhile).
        claims = session_cookie.read(token, now_ms=now_ms())
        user = accounts.current_user(claims.user_id, claims.password_tag) if claims else None
        if user is None:
            sign_out()
            return None
        st.session_state[USER_KEY] = user
        st.session_state[SIGNED_IN_BY_COOKIE_KEY] = True
        return user
    user = st.session_state.get(USER_KEY)
    if user is None:
        return None
    # The sign-in page's login, re-checked each run: a deleted user or a new password ends it.
    return accounts.current_user(user.id, user.password_tag)


def has_session_cookie() -> bool:
    return _session_token() is not None


def remember_sign_in(user: SignedInUser) -> None:
    st.session_state[USER_KEY] = user


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
    """For live fragments, which rerun without the router: stop when access was withdrawn."""
    user = st.session_state.get(USER_KEY)
    if user is None or not any(
        m.organization_id == membership.organization_id for m in accounts.read_memberships(user.id)
    ):
        st.rerun(scope="app")


def current_org() -> Membership:
    """The organization the router checked this run; a page reached any other way stops."""
    membership = st.session_state.get(MEMBERSHIP_KEY)
    if membership is None:
        st.error("Sign in to see this page.")
        st.stop()
    return membership


def sign_out() -> None:
    for key in (USER_KEY, ORG_KEY, MEMBERSHIP_KEY, SIGNED_IN_BY_COOKIE_KEY):
        st.session_state.pop(key, None)


def user_menu(user: SignedInUser, membership: Membership) -> None:
    with st.sidebar:
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
