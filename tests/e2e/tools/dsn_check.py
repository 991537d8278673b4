#!/usr/bin/python3
"""Parses a delivery status notification (RFC 3464 / RFC 6522) with
Python's email module and prints what the tests check, one "key=value" a
line, so that bats can assert on them:

  dsn_check.py FILE

  content_type=multipart/report
  report_type=delivery-status
  subject=...
  to=...
  auto_submitted=auto-replied
  parts=3
  part1=text/plain
  part2=message/delivery-status
  part3=message/rfc822 | text/rfc822-headers
  reporting_mta=dns; mx.example.test
  original_envelope_id=...
  rcpt.N.final_recipient=rfc822; bob@remote.test      (N from 1)
  rcpt.N.original_recipient=...
  rcpt.N.action=failed
  rcpt.N.status=5.1.1
  rcpt.N.remote_mta=dns; mx.remote.test
  rcpt.N.diagnostic_code=smtp; 550 ...
  returned_subject=...            (Subject of the returned message/headers)
  returned_has_body=yes|no
Exits 1 when the file is not a well-formed multipart/report.
"""
import email
import email.policy
import sys


def out(key, value):
    if value is None:
        return
    value = " ".join(str(value).split())
    print("%s=%s" % (key, value))


def main():
    with open(sys.argv[1], "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out("content_type", msg.get_content_type())
    out("report_type", msg.get_param("report-type"))
    out("subject", msg["Subject"])
    out("to", msg["To"])
    out("from", msg["From"])
    out("auto_submitted", msg["Auto-Submitted"])
    if msg.get_content_type() != "multipart/report" or \
            not msg.is_multipart():
        return 1
    parts = msg.get_payload()
    out("parts", len(parts))
    for i, part in enumerate(parts, 1):
        out("part%d" % i, part.get_content_type())
    status = [p for p in parts
              if p.get_content_type() == "message/delivery-status"]
    if not status:
        return 1
    # The email package splits message/delivery-status into header blocks:
    # the per-message one, then one per recipient.
    blocks = status[0].get_payload()
    if not blocks:
        return 1
    per_msg = blocks[0]
    out("reporting_mta", per_msg["Reporting-MTA"])
    out("original_envelope_id", per_msg["Original-Envelope-Id"])
    out("arrival_date", per_msg["Arrival-Date"])
    for n, b in enumerate(blocks[1:], 1):
        for field in ("Final-Recipient", "Original-Recipient", "Action",
                      "Status", "Remote-MTA", "Diagnostic-Code",
                      "Last-Attempt-Date"):
            out("rcpt.%d.%s" % (n, field.lower().replace("-", "_")),
                b[field])
    if len(parts) >= 3:
        third = parts[2]
        if third.get_content_type() == "message/rfc822":
            inner = third.get_payload(0)
            out("returned_subject", inner["Subject"])
            body = inner.get_payload()
            out("returned_has_body", "yes" if body and body.strip()
                else "no")
        else:
            hdrs = email.message_from_string(third.get_payload(),
                                             policy=email.policy.compat32)
            out("returned_subject", hdrs["Subject"])
            out("returned_has_body", "no")
    return 0


if __name__ == "__main__":
    sys.exit(main())
