"""The benchmark's results: per-run records in, one table out (text and
Markdown), plus results.tsv and results.json for machines."""

import json
import statistics

PEER_OF = {"smtp": "postfix", "latency": "postfix", "idle": "postfix",
           "pop3": "dovecot"}
PEER_LABEL = {"postfix": "Postfix", "dovecot": "Dovecot"}


class Metric:
    def __init__(self, key, phase, cfg, field, label, unit, target=None):
        self.key = key          # stable id, e.g. smtp.10.many.accept_mps
        self.phase = phase      # which runs hold the values
        self.cfg = cfg
        self.field = field      # key in a run record
        self.label = label
        self.unit = unit
        # ("ratio_ge", x) | ("ratio_le", x) | ("abs_le", x) | ("abs_ge", x)
        self.target = target


def metrics(cfg):
    out = []
    for mode in ("one", "many"):
        for s in cfg["smtp_sessions"]:
            c = "%d.%s" % (s, mode)
            what = "SMTP %d sess, %s" % (s, "1 msg/sess" if mode == "one"
                                         else "many msg/sess")
            ratio = 2 if s == 1 else 4
            out.append(Metric("smtp.%s.accept_mps" % c, "smtp", c, "accept_mps",
                              what + ": accepted", "msg/s",
                              ("ratio_ge", ratio)))
            out.append(Metric("smtp.%s.deliver_mps" % c, "smtp", c,
                              "deliver_mps", what + ": delivered", "msg/s"))
            out.append(Metric("smtp.%s.cpu_ms" % c, "smtp", c, "cpu_ms_per_msg",
                              what + ": server CPU", "ms/msg",
                              ("ratio_le", 0.2)))
            out.append(Metric("smtp.%s.client_cpu" % c, "smtp", c,
                              "client_cpu_pct",
                              what + ": smtp-source CPU", "% of a CPU"))
            out.append(Metric("smtp.%s.lat_p50" % c, "latency", c, "lat_p50_ms",
                              what + ": DATA end→250 p50", "ms"))
            out.append(Metric("smtp.%s.lat_p99" % c, "latency", c, "lat_p99_ms",
                              what + ": DATA end→250 p99", "ms"))
    for c in cfg["pop3_clients"]:
        what = "POP3 %d client%s" % (c, "" if c == 1 else "s")
        out.append(Metric("pop3.%d.mps" % c, "pop3", str(c), "msg_per_s",
                          what + ": retrieved", "msg/s",
                          ("ratio_ge", 2) if c == 10 else None))
        out.append(Metric("pop3.%d.mbps" % c, "pop3", str(c), "mb_per_s",
                          what + ": retrieved", "MB/s"))
        out.append(Metric("pop3.%d.cpu_ms" % c, "pop3", str(c), "cpu_ms_per_msg",
                          what + ": server CPU", "ms/msg", ("ratio_le", 0.5)))
        out.append(Metric("pop3.%d.cpu_ms_nologin" % c, "pop3", str(c),
                          "cpu_ms_per_msg_nologin",
                          what + ": server CPU less logins", "ms/msg"))
        out.append(Metric("pop3.%d.login_ms" % c, "pop3", str(c),
                          "login_cpu_ms", what + ": server CPU per login",
                          "ms"))
        out.append(Metric("pop3.%d.client_cpu" % c, "pop3", str(c),
                          "client_cpu_pct", what + ": client CPU", "% of a CPU"))
    for n in cfg["idle"]:
        what = "%s idle conns" % format(n, ",")
        out.append(Metric("idle.%d.greeted" % n, "idle", str(n), "ehlo_ok",
                          what + ": greeted+EHLO", "conns", ("abs_ge", n)))
        out.append(Metric("idle.%d.pss" % n, "idle", str(n), "pss_kib_per_conn",
                          what + ": server PSS", "KiB/conn", ("abs_le", 32)))
    return out


def _values(runs, phase, cfg, server, field):
    return [r[field] for r in runs
            if r["phase"] == phase and r["cfg"] == cfg and r["server"] == server
            and r.get("ok") and r.get("counted", True)
            and r.get(field) is not None]


def _stats(vals):
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals),
            "max": max(vals), "n": len(vals)}


def _failed(runs, phase, cfg, server):
    return [r for r in runs if r["phase"] == phase and r["cfg"] == cfg
            and r["server"] == server and not r.get("ok")
            and r.get("counted", True)]


def fmt_num(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 100 or float(v).is_integer():
        return format(round(v), ",")
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


def fmt_ratio(x):
    if x >= 10:
        return "%.0f×" % x
    if x >= 0.1:
        return "%.2f×" % x
    return "%.2g×" % x


def fmt_stats(st, nfail):
    if st is None:
        return "FAILED" if nfail else "n/a"
    s = fmt_num(st["median"])
    if st["n"] > 1:
        s += " [%s–%s]" % (fmt_num(st["min"]), fmt_num(st["max"]))
    if nfail:
        s += " (%d failed)" % nfail
    return s


def fmt_target(t):
    if t is None:
        return ""
    kind, x = t
    return {"ratio_ge": "≥ %s× peer", "ratio_le": "≤ %s× peer",
            "abs_le": "≤ %s", "abs_ge": "= %s"}[kind] % (
                format(x, ",") if isinstance(x, int) else x)


def aggregate(runs, cfg):
    rows = []
    for m in metrics(cfg):
        peer = PEER_OF[m.phase]
        ps = _stats(_values(runs, m.phase, m.cfg, "postern", m.field))
        qs = _stats(_values(runs, m.phase, m.cfg, peer, m.field))
        pf = len(_failed(runs, m.phase, m.cfg, "postern"))
        qf = len(_failed(runs, m.phase, m.cfg, peer))
        ratio = None
        if ps and qs and qs["median"]:
            ratio = ps["median"] / qs["median"]
        met = None
        if m.target is not None:
            kind, x = m.target
            if pf:
                met = False
            elif kind.startswith("ratio") and ratio is not None:
                met = ratio >= x if kind == "ratio_ge" else ratio <= x
            elif kind == "abs_le" and ps:
                met = ps["median"] <= x
            elif kind == "abs_ge" and ps:
                met = ps["min"] >= x
        rows.append({"key": m.key, "label": m.label, "unit": m.unit,
                     "peer": peer, "postern": ps, "peer_stats": qs,
                     "postern_failed": pf, "peer_failed": qf,
                     "ratio": ratio, "target": fmt_target(m.target),
                     "met": met})
    return rows


def table_lines(rows, markdown):
    head = ["Metric", "Postern", "Peer", "Postern/peer", "Target", "Met?"]
    body = []
    for r in rows:
        if r["postern"] is None and r["peer_stats"] is None \
                and not r["postern_failed"] and not r["peer_failed"]:
            continue
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        ratio = "" if r["ratio"] is None else fmt_ratio(r["ratio"])
        body.append(["%s (%s)" % (r["label"], r["unit"]),
                     fmt_stats(r["postern"], r["postern_failed"]),
                     "%s %s" % (PEER_LABEL[r["peer"]],
                                fmt_stats(r["peer_stats"], r["peer_failed"])),
                     ratio, r["target"], met])
    if markdown:
        out = ["| " + " | ".join(head) + " |",
               "|" + "|".join(["---"] + ["---:"] * 3 + ["---", "---"]) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in body]
        return out
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(widths[i]) if i in (0, 4, 5)
                                else c.rjust(widths[i])
                                for i, c in enumerate(row)).rstrip()
    return [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(b) for b in body]


def write_outputs(outdir, rows, runs, info):
    with open(outdir + "/results.tsv", "w") as f:
        f.write("\t".join(["metric", "unit", "postern_median", "postern_min",
                           "postern_max", "postern_failed_runs", "peer",
                           "peer_median", "peer_min", "peer_max",
                           "peer_failed_runs", "ratio", "target", "met"]) + "\n")
        for r in rows:
            p, q = r["postern"] or {}, r["peer_stats"] or {}
            f.write("\t".join(str(x) for x in [
                r["key"], r["unit"], p.get("median", ""), p.get("min", ""),
                p.get("max", ""), r["postern_failed"], r["peer"],
                q.get("median", ""), q.get("min", ""), q.get("max", ""),
                r["peer_failed"],
                "" if r["ratio"] is None else "%.4f" % r["ratio"],
                r["target"], "" if r["met"] is None else
                ("yes" if r["met"] else "no")]) + "\n")
    with open(outdir + "/results.json", "w") as f:
        json.dump({"machine": info, "metrics": rows, "runs": runs}, f,
                  indent=1, default=str)
    with open(outdir + "/results.md", "w") as f:
        f.write("\n".join(table_lines(rows, True)) + "\n")


def write_runs_tsv(path, runs):
    keys = []
    for r in runs:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(path, "w") as f:
        f.write("\t".join(keys) + "\n")
        for r in runs:
            f.write("\t".join(_cell(r.get(k, "")) for k in keys) + "\n")


def _cell(v):
    if isinstance(v, float):
        return "%.4f" % v
    return str(v).replace("\t", " ").replace("\n", " | ")
