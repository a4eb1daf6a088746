#!/usr/bin/env python3
"""Medians per system and scenario of a ../shared/bench-peers JSONL file (S1 to S5).

    python3 scripts/summarize-peers.py /tmp/bench-vs-peers.jsonl

S1/S4 CPU per delivery uses server_cpu_s_schedstat (ns precision) where present. Runs with the
harness's --ours-no-ack are listed as the system ours-noack, and runs with --tag T as SYSTEM@T.
"""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    rows = defaultdict(list)
    for line in open(path):
        if line.strip():
            record = json.loads(line)
            system = record["system"]
            if "--ours-no-ack" in record.get("cmdline", ""):
                system += "-noack"
            if record.get("tag"):
                system += "@" + record["tag"]
            rows[(record["scenario"], system)].append(record)
    med = statistics.median
    print("| scenario | system | runs | figures (median) | loss |")
    print("|---|---|---|---|---|")
    for (scenario, system), runs in sorted(rows.items()):
        loss = sum(r.get("loss", 0) or 0 for r in runs)
        if scenario in ("S1", "S4"):
            us = [r.get("server_cpu_s_schedstat", r["server_cpu_s"]) * 1e6 / max(1, r["received"]) for r in runs]
            text = "%.0f deliveries/s, %.3f µs server CPU per delivery, server %.0f %%, client %.0f %%" % (
                med(r["deliveries_per_s"] for r in runs), med(us),
                med(r["server_util_pct"] for r in runs), med(r["client_util_pct"] for r in runs))
        elif scenario in ("S2", "S5"):
            text = "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %.2f µs server CPU per delivery" % (
                med(r["lat_p50_us"] for r in runs) / 1000, med(r["lat_p99_us"] for r in runs) / 1000,
                med(r["lat_p999_us"] for r in runs) / 1000, med(r["server_us_per_delivery"] for r in runs))
        elif scenario == "S3":
            text = "%.0f B per idle subscribed connection" % med(r["bytes_per_conn"] for r in runs)
        else:
            text = "?"
        print("| %s | %s | %d | %s | %d |" % (scenario, system, len(runs), text, loss))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-vs-peers.jsonl")
