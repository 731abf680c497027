#!/usr/bin/env python3
"""Writes the stack's replay service's answers (tests/replay/replay.py): Google Postmaster Tools
v2 and Microsoft SNDS as documented, for the stack's own domain, so the demo and the suites that
run it show those families. Usage: replay-routes.py DIR DOMAIN. DIR gets routes.json and the
bodies; the statistics are dated yesterday and three days ago (UTC), when the stack starts.

The bodies are the fixtures of tests/fixtures/{postmaster,snds} (written from the APIs'
documentation) where their dates do not matter; the statistics are generated here in the same
shape (metric definitions m0.. in the order of Metric::daily() in src/postmaster/api.rs).
"""
import datetime
import json
import os
import shutil
import sys

out, domain = sys.argv[1], sys.argv[2]
repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
fx = os.path.join(repo, "tests", "fixtures")
os.makedirs(out, exist_ok=True)


def write(name, data):
    path = os.path.join(out, name)
    with open(path, "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data))
    return path


def copy(src, name):
    path = os.path.join(out, name)
    shutil.copyfile(os.path.join(fx, src), path)
    return path


today = datetime.datetime.now(datetime.timezone.utc).date()


def date(days_ago):
    d = today - datetime.timedelta(days=days_ago)
    return {"year": d.year, "month": d.month, "day": d.day}


def stats(rows):
    return {"domainStats": [
        {"name": f"domains/{domain}/domainStats/r{i}", "metric": f"m{m}", "date": d, "value": v}
        for i, (m, d, v) in enumerate(rows)]}


y, old = date(1), date(3)
dv = lambda x: {"doubleValue": x}
# m0 spam rate, m1-3 auth spf/dkim/dmarc, m4-5 TLS inbound/outbound, m6 delivery error rate,
# m7 its count, m8-9 rate by type (reject, temp_fail), m10-19 by reason, m20 feedback-loop ids.
daily = stats([
    (0, old, dv(0.0008)), (0, y, dv(0.0021)), (1, y, dv(0.999)), (2, y, dv(0.997)),
    (3, y, dv(0.996)), (4, y, dv(1.0)), (6, y, dv(0.012)), (7, y, {"intValue": "31"}),
    (8, y, dv(0.009)), (9, y, dv(0.003)), (12, y, dv(0.004)), (15, y, dv(0.005)),
    (20, y, {"stringList": {"values": ["newsletter", "receipts"]}}),
])
loops = stats([(0, y, dv(0.0031)), (1, y, dv(0.0002))])
account = json.load(open(os.path.join(fx, "postmaster", "service-account.json")))
write("service-account.json", account)
routes = {
    "POST /token": {"file": write("token.json", {
        "access_token": "stack-access-token", "expires_in": 3600, "token_type": "Bearer"})},
    "GET /v2/domains?pageSize=200": {"file": write("domains.json", {"domains": [
        {"name": f"domains/{domain}", "permission": "OWNER", "verificationState": "VERIFIED"}]})},
    f"POST /v2/domains/{domain}/domainStats:query": [
        {"when": "FEEDBACK_LOOP_SPAM_RATE", "file": write("loops.json", loops)},
        {"file": write("stats.json", daily)},
    ],
    f"GET /v2/domains/{domain}/complianceStatus":
        {"file": copy("postmaster/compliance-example.com.json", "compliance.json")},
    "GET /snds/data.aspx": {"file": copy("snds/data-2026-12-01.csv", "snds-data.csv"),
                            "type": "text/csv"},
    "GET /snds/ipStatus.aspx": {"file": copy("snds/ipstatus.csv", "snds-ipstatus.csv"),
                                "type": "text/csv"},
}
write("routes.json", routes)
