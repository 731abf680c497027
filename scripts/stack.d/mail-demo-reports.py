#!/usr/bin/env python3
"""Mails a DMARC aggregate report (gzip'd XML) and a TLS-RPT report (gzip'd JSON) for dx.test
into reports@seed.test through the stack's MX port, as receivers send them, and the feedback
reports of tests/fixtures/feedback (two complaints and a DMARC failure report, ARF). Used by
scripts/demo. Usage: mail-demo-reports.py ENV_FILE"""
import email.policy, gzip, json, os, smtplib, sys, time
from email.message import EmailMessage

env = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l and not l.startswith("#"))
now = int(time.time())
begin, end = now - 86400, now - 1
xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <version>1.0</version>
  <report_metadata><org_name>receiver.example</org_name><email>noreply-dmarc@receiver.example</email>
    <report_id>demo-{now}</report_id><date_range><begin>{begin}</begin><end>{end}</end></date_range></report_metadata>
  <policy_published><domain>dx.test</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><np>reject</np></policy_published>
  <record><row><source_ip>127.0.0.1</source_ip><count>120</count>
    <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>dx.test</header_from><envelope_from>dx.test</envelope_from></identifiers>
    <auth_results><dkim><domain>dx.test</domain><selector>dx</selector><result>pass</result></dkim>
      <spf><domain>dx.test</domain><scope>mfrom</scope><result>pass</result></spf></auth_results></record>
  <record><row><source_ip>203.0.113.9</source_ip><count>4</count>
    <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>dx.test</header_from></identifiers>
    <auth_results><spf><domain>spoofer.example</domain><result>fail</result></spf></auth_results></record>
</feedback>
"""
tls = {"organization-name": "receiver.example",
       "date-range": {"start-datetime": time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(begin)),
                      "end-datetime": time.strftime("%Y-%m-%dT23:59:59Z", time.gmtime(begin))},
       "contact-info": "tlsrpt@receiver.example", "report-id": f"tls-demo-{now}",
       "policies": [{"policy": {"policy-type": "no-policy-found", "policy-domain": "dx.test"},
                     "summary": {"total-successful-session-count": 118, "total-failure-session-count": 2},
                     "failure-details": [{"result-type": "starttls-not-supported", "failed-session-count": 2}]}]}

def mail(subject, filename, ctype, data):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "noreply-dmarc@receiver.example", "reports@seed.test", subject
    m.set_content("Report attached.")
    maintype, subtype = ctype.split("/")
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m

new_dir = os.path.join(env["DX_MAILDIR_ROOT"], "seed.test", "reports", "Maildir", "new")
def waiting():
    return len(os.listdir(new_dir)) if os.path.isdir(new_dir) else 0
before = waiting()
messages = [
    ("noreply-dmarc@receiver.example",
     mail("Report Domain: dx.test Submitter: receiver.example", f"receiver.example!dx.test!{begin}!{end}.xml.gz",
          "application/gzip", gzip.compress(xml.encode())).as_bytes(policy=email.policy.SMTP)),
    ("noreply-dmarc@receiver.example",
     mail("Report Domain: dx.test Submitter: receiver.example", f"receiver.example!dx.test!{begin}!{end}.json.gz",
          "application/tlsrpt+gzip", gzip.compress(json.dumps(tls).encode())).as_bytes(policy=email.policy.SMTP)),
]
fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "feedback")
for name in sorted(os.listdir(fixtures)):
    if name.endswith(".eml"):
        messages.append(("", open(os.path.join(fixtures, name), "rb").read()))
# A temporary refusal (451 while rspamd, the milter, is still busy on a loaded machine) is
# retried as a real sending MTA would, for at most 60 s.
retry_until = time.time() + 60
for sender, raw in messages:
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", int(env["DX_SMTP_MX_PORT"]), timeout=20) as s:
                s.sendmail(sender, ["reports@seed.test"], raw)
            break
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as e:
            codes = ([c for c, _ in e.recipients.values()]
                     if isinstance(e, smtplib.SMTPRecipientsRefused) else [e.smtp_code])
            if all(400 <= c < 500 for c in codes) and time.time() < retry_until:
                time.sleep(0.5)
                continue
            raise
# Accepted is not delivered yet: wait until all are in the mailbox (milliseconds here).
deadline = time.time() + 20
while waiting() < before + len(messages):
    if time.time() > deadline:
        sys.exit("the demo reports were not delivered to reports@seed.test within 20 s")
    time.sleep(0.05)
print(f"mailed a DMARC aggregate, a TLS-RPT and {len(messages) - 2} feedback reports for dx.test into reports@seed.test")
