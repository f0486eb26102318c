"""The dashboard's review store and who is reviewing.

The store is set by the administrator in ``app/.streamlit/secrets.toml``::

    [store]
    folder = "/srv/fairness-audit/reviews"   # a SQLite file in this folder
    # or, for a team:  url = "postgresql://reviews@db.example.org/reviews"

or by the environment variable ``FAIRNESS_AUDIT_STORE`` (a URL).  Without
either, nothing is saved and the Review and History pages say how to set
one.  The reviewer is the signed-in user (``st.user``) when the dashboard
runs behind the organisation's sign-in (``[auth]`` in secrets.toml); else a
typed name, recorded as unverified.
"""
from __future__ import annotations

import os

import streamlit as st

from fairness_core import InputError
from fairness_core.store import Reviewer, open_store, sqlite_url

ENV = "FAIRNESS_AUDIT_STORE"
HOW_TO = ("No review store is set, so audits cannot be saved or reviewed here. The "
          "administrator sets one in app/.streamlit/secrets.toml: a [store] section with "
          "folder = \"/path/to/a/folder\" (a SQLite file there) or url = "
          "\"postgresql://user@host/database\" (see the README's \"Review trail\").")


def _section(name: str) -> dict:
    try:
        got = st.secrets.get(name) if name in st.secrets else None
    except Exception:  # no secrets file, or one that is not valid TOML
        got = None
    if got is not None and hasattr(got, "to_dict"):
        got = got.to_dict()
    return got if isinstance(got, dict) else {}


def store_url() -> str | None:
    """The store's URL from the configuration, or None when none is set."""
    conf = _section("store")
    if conf.get("url"):
        return str(conf["url"])
    if conf.get("folder"):
        return sqlite_url(conf["folder"])
    return os.environ.get(ENV) or None


@st.cache_resource(show_spinner=False, max_entries=4)
def _open(url: str):
    return open_store(url)


def store():
    """The configured store, or None after showing why there is none (not
    configured, or it cannot be opened)."""
    try:
        url = store_url()
        if url is None:
            st.info(HOW_TO, icon="🗄️")
            return None
        return _open(url)
    except InputError as err:
        st.error(err.message, icon="⚠️")
        return None


def auth_configured() -> bool:
    """True when the dashboard runs behind a sign-in (``[auth]`` in secrets)."""
    return bool(_section("auth"))


def reviewer(where=st) -> Reviewer | None:
    """Who is reviewing: the signed-in user (verified), or a typed name
    (unverified); None while there is neither (with a prompt)."""
    if auth_configured():
        if getattr(st.user, "is_logged_in", False):
            name = st.user.get("name") or st.user.get("email")
            if name:
                where.caption(f"Reviewing as {name} (from the organisation's sign-in).")
                return Reviewer(str(name), verified=True)
        where.info("Sign in to review: your name then comes from the organisation's sign-in.")
        if where.button("Sign in", key="review_login"):
            st.login()
        return None
    name = where.text_input("Your name (as the reviewer)", key="reviewer_name",
                            help="Recorded with every decision, comment and sign-off. "
                                 "Without the organisation's sign-in the name is typed, "
                                 "so it is recorded as unverified.")
    if not name.strip():
        where.caption("Type your name to review; it is recorded as unverified.")
        return None
    return Reviewer(name.strip(), verified=False)


def review_of(result):
    """The review of ``result``'s newest saved version, for the report; None
    when there is no store or the audit is not saved."""
    try:
        url = store_url()
        if url is None:
            return None
        s = _open(url)
        audit_id = s.find_result(result)
        return None if audit_id is None else s.review(audit_id)
    except InputError:
        return None
