"""Review: save the audit, decide on each finding, comment, and sign off."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

import trail
from fairness_core import InputError
from fairness_core.store import STATUSES, ReviewConflict, dumps_export
from ui import SEVERITY_ICON, md, say

ROLES = ["Data scientist", "Risk officer", "Legal reviewer", "Outside auditor", "Other"]
STATUS_ICON = {None: "⚪ Open (no decision yet)", "open": "⚪ Open", "explained": "🟢 Explained",
               "mitigation_planned": "🛠️ Mitigation planned", "not_an_issue": "✔️ Not an issue"}
#: Which findings the page lists first.
SHOW = {"review": "Findings that need a decision (failing or not judged)",
        "all": "Every finding"}


def audit_label(row) -> str:
    signed = ", signed off" if row["signed"] else ""
    return (f"Audit {row['id']} v{row['version']}: {row['data_name'] or 'data'}, "
            f"{', '.join(row['models'])}, saved {row['saved_at']:%Y-%m-%d %H:%M} UTC{signed}")


def _when(t) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _who(name, verified) -> str:
    return md(name) + ("" if verified else " (unverified)")


def save_current(store, ctx) -> int | None:
    """The saved id of the sidebar's audit, with a button to save it."""
    if ctx is None or ctx.result is None:
        st.caption("Set up an audit in the sidebar to save it here; saved audits can be "
                   "reviewed below.")
        return None
    saved = store.find_result(ctx.result)
    if saved is not None:
        st.caption(f"The audit in the sidebar is saved as audit {saved}.")
        return saved
    st.write("The audit in the sidebar is not saved yet. Saving keeps its settings, its "
             "provenance (the data's SHA-256, file name, versions, time), its count table "
             "and its results, so that it can be reviewed and signed off: never a row of the "
             "data.")
    if st.button("Save this audit to the review store", type="primary", key="save_audit"):
        try:
            saved, _ = store.save_audit(ctx.result)
        except InputError as err:
            st.error(say(err.message), icon="⚠️")
            return None
        st.success(f"Saved as audit {saved}.", icon="✅")
        st.session_state["review_pick"] = saved
    return saved


def _seen(audit_id: int, key: str, current: int) -> int:
    """The decision's version this session last loaded (kept across reruns,
    so that someone else's change in between is noticed)."""
    seen = st.session_state.setdefault("review_seen", {})
    return seen.setdefault((audit_id, key), current)


def _set_seen(audit_id: int, key: str, version: int) -> None:
    st.session_state.setdefault("review_seen", {})[(audit_id, key)] = version


def _decision_text(d) -> str:
    if d is None:
        return STATUS_ICON[None]
    parts = [STATUS_ICON.get(d["status"], d["status"])]
    if d["owner"]:
        parts.append(f"owner {md(d['owner'])}, due {d['due_date']:%Y-%m-%d}")
    for k in ("justification", "reason"):
        if d[k]:
            parts.append(md(d[k]))
    return ": ".join(parts[:1]) + (" — " + "; ".join(parts[1:]) if parts[1:] else "") + \
        f" (by {_who(d['reviewer'], d['reviewer_verified'])}, {_when(d['updated_at'])})"


def _where(f: dict) -> str:
    """Where a finding is: model / attribute / group / metric."""
    return " / ".join(str(f[k]) for k in ("model", "attribute", "group", "metric")
                      if f.get(k) is not None) or str(f.get("kind"))


def _finding(store, review, i: int, item: dict, who, names) -> None:
    f, d = item["finding"], item["decision"]
    key = item["key"]
    aid = review.audit_id
    current = d["row_version"] if d else 0
    seen = _seen(aid, key, current)
    st.markdown(f"**{SEVERITY_ICON.get(f.get('severity'), '')}** {say(f.get('text', ''), names)}")
    st.markdown(f"**Decision:** {_decision_text(d)}")
    for c in item["comments"]:
        st.markdown(f"💬 {_who(c['reviewer'], c['verified'])}, {_when(c['at'])}: {md(c['text'])}")
    changes = store.trail(aid)
    changes = changes[(changes["finding_key"] == key) & (changes["kind"] == "decision")]
    if len(changes) > 1:
        with st.expander(f"Every decision on this finding ({len(changes)})"):
            for e in changes.itertuples(index=False):
                at = pd.Timestamp(e.at)
                at = at.tz_localize("UTC") if at.tzinfo is None else at
                st.markdown(f"{_when(at)}: {STATUSES.get(e.status, e.status)} by "
                            f"{_who(e.reviewer, e.reviewer_verified)}"
                            + (f": {md(e.text)}" if e.text else ""))
    if review.signed:
        return
    if seen != current:
        st.warning("Someone changed this decision after you opened it (shown above). Reload "
                   "to decide from it; what you typed stays.", icon="🔄")
        if st.button("Reload this decision", key=f"rv_reload_{aid}_{i}"):
            _set_seen(aid, key, current)
            st.rerun()
    if who is None:
        return
    base = f"rv_{aid}_{i}"
    if f"{base}_status" not in st.session_state:
        st.session_state[f"{base}_status"] = d["status"] if d else "open"
        st.session_state[f"{base}_just"] = (d or {}).get("justification") or ""
        st.session_state[f"{base}_owner"] = (d or {}).get("owner") or ""
        st.session_state[f"{base}_due"] = (d or {}).get("due_date")
        st.session_state[f"{base}_why"] = (d or {}).get("reason") or ""
    status = st.selectbox("Status", list(STATUSES), format_func=STATUSES.get,
                          key=f"{base}_status")
    kw = {}
    if status == "explained":
        kw["justification"] = st.text_area("Justification: why the gap is legitimate",
                                           key=f"{base}_just")
    elif status == "mitigation_planned":
        c1, c2 = st.columns(2)
        kw["owner"] = c1.text_input("Owner", key=f"{base}_owner")
        kw["due_date"] = c2.date_input("Done by", key=f"{base}_due",
                                       min_value=dt.date(2000, 1, 1))
        kw["justification"] = st.text_area("Plan (optional)", key=f"{base}_just")
    elif status == "not_an_issue":
        kw["reason"] = st.text_area("Why it is not an issue", key=f"{base}_why")
    if st.button("Save the decision", key=f"{base}_save"):
        try:
            new = store.decide(aid, key, status, who, expected_version=seen, **kw)
        except ReviewConflict as err:
            st.error(err.message, icon="⛔")
        except InputError as err:
            st.error(say(err.message), icon="⚠️")
        else:
            _set_seen(aid, key, new)
            st.session_state["review_saved"] = f"Decision saved ({STATUSES[status]})."
            st.rerun()
    text = st.text_input("Comment", key=f"{base}_comment")
    if st.button("Add the comment", key=f"{base}_add_comment"):
        try:
            store.comment(aid, key, text, who)
        except InputError as err:
            st.error(say(err.message), icon="⚠️")
        else:
            st.session_state.pop(f"{base}_comment", None)
            st.session_state["review_saved"] = "Comment added."
            st.rerun()


def _sign_off(store, review, who) -> None:
    st.subheader("Sign-off")
    s = review.signoff
    if s is not None:
        st.success(f"Signed off by {_who(s['name'], s['verified'])} ({md(s['role'])}) on "
                   f"{_when(s['signed_at'])}: {md(s['statement'])}", icon="🔏")
        st.write("A signed-off audit is read-only. To change its review, start a new version: "
                 "it keeps the decisions and comments so far and points to this one.")
        if st.button("Start a new version of this audit", key="new_version"):
            try:
                new = store.new_version(review.audit_id)
            except InputError as err:
                st.error(say(err.message), icon="⚠️")
            else:
                st.session_state["review_next"] = new  # shown on the next run
                st.rerun()
        return
    st.write("Not signed off. Signing off records your name, role and statement, and makes "
             "this version of the audit read-only.")
    if who is None:
        return
    role = st.selectbox("Role", ROLES, key="signoff_role")
    statement = st.text_area("Statement", key="signoff_statement",
                             placeholder="What you have reviewed and what you sign off.")
    if st.button("Sign off this version", key="signoff"):
        try:
            store.sign_off(review.audit_id, who, role, statement)
        except InputError as err:
            st.error(say(err.message), icon="⚠️")
        else:
            st.rerun()


def render():
    st.title("Review")
    st.caption("Decide on each finding with the people who own it, keep the comments, and "
               "sign off. Everything is saved in the review store with who did it and when.")
    store = trail.store()
    if store is None:
        return
    who = trail.reviewer()
    ctx = st.session_state.get("ctx")
    current = save_current(store, ctx)
    listed = store.audits()
    if not len(listed):
        return
    ids = list(listed["id"])
    if st.session_state.get("review_next") in ids:
        st.session_state["review_pick"] = st.session_state.pop("review_next")
    want = st.session_state.get("review_pick")
    if want not in ids:
        st.session_state["review_pick"] = current if current in ids else ids[0]
    rows = {r["id"]: r for r in listed.to_dict("records")}
    aid = st.selectbox("Saved audit", ids, key="review_pick",
                       format_func=lambda i: audit_label(rows[i]))
    review = store.review(aid)
    if review.previous_id is not None:
        st.caption(f"Version {review.version}: a new version of saved audit "
                   f"{review.previous_id}.")
    if review.signed:
        s = review.signoff
        st.info(f"This version was signed off by {_who(s['name'], s['verified'])} on "
                f"{_when(s['signed_at'])} and is read-only.", icon="🔏")
    if review.unverified_names:
        st.caption("Reviewer names marked (unverified) were typed, not taken from a sign-in.")
    msg = st.session_state.pop("review_saved", None)
    if msg:
        st.success(msg, icon="✅")
    show = st.radio("Show", list(SHOW), format_func=SHOW.get, horizontal=True,
                    key="review_show")
    names = [review.data_name or ""]
    items = [(i, it) for i, it in enumerate(review.findings) if show == "all" or
             it["finding"].get("kind") in ("fail", "not_judged")]
    if not items:
        st.info("No finding needs a decision: every gap passed or could not be judged.")
    else:
        st.dataframe(pd.DataFrame({
            "#": [i + 1 for i, _ in items],
            "Severity": [SEVERITY_ICON.get(it["finding"].get("severity"), "") for _, it in items],
            "Finding": [_where(it["finding"]) for _, it in items],
            "Status": [STATUS_ICON.get(it["decision"]["status"] if it["decision"] else None)
                       for _, it in items],
            "Comments": [len(it["comments"]) for _, it in items]}),
            hide_index=True, width="stretch", height=min(36 * len(items) + 40, 320))
        by_index = dict(items)
        pick = st.selectbox("Finding to review", list(by_index), key=f"review_finding_{aid}",
                            format_func=lambda i: f"#{i + 1} {_where(by_index[i]['finding'])}")
        with st.container(border=True):
            _finding(store, review, pick, by_index[pick], None if review.signed else who,
                     names)
    _sign_off(store, review, None if review.signed else who)
    st.subheader("Move the review")
    st.download_button("Download this review (JSON)",
                       dumps_export(store.export_reviews(aid)).encode("utf-8"),
                       file_name=f"fairness-review-audit-{aid}-v{review.version}.json",
                       mime="application/json", key="review_download")
    st.caption("The decisions, comments and sign-off with the audit's count table and "
               "results (no row of the data). Another store reads it with the command line's "
               "--review-import on the same data and settings.")
