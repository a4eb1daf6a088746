#!/usr/bin/env python3
"""Runs schemathesis (pinned in scripts/install-test-deps.sh) against a running server on
127.0.0.1 from the document it serves at /api/openapi.json, checking that no answer is a 5xx
and that every status, content type, header and body is one the document gives.

usage: schemathesis_run.py PORT LABEL [--bearer TOKEN] [--check NAME]... [--max-examples N]

Before the run it creates the topic `orders` with one message (the document's example name),
so the example phase reaches the answers of a topic that exists and not only 404s. Ends with
"schemathesis ok: LABEL" and exit 0, or schemathesis's report and its non-zero exit.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# The checks every run makes. Each is a property of the document and the server together.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]


def call(port, method, path, bearer, body=None):
    headers = {"Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def statuses(report_dir):
    """How many answers had each status, from the HAR file (har-….json) schemathesis wrote."""
    counts = {}
    for name in os.listdir(report_dir):
        if name.startswith("har") and name.endswith(".json"):
            with open(os.path.join(report_dir, name)) as har:
                for entry in json.load(har)["log"]["entries"]:
                    status = entry["response"]["status"]
                    counts[status] = counts.get(status, 0) + 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("label")
    parser.add_argument("--bearer")
    parser.add_argument("--check", action="append", default=[], help="a check besides the usual ones")
    parser.add_argument("--expect-status", type=int, action="append", default=[],
                        help="a status some answer must have had, so the run is known to reach it")
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("PUBSUB_SCHEMATHESIS_EXAMPLES", "25")))
    args = parser.parse_args()
    port = args.port

    call(port, "POST", "/api/topics", args.bearer, {"name": "orders"})
    call(port, "POST", "/api/topics/orders/messages", args.bearer, {"message": {"cpu": 0.85}})

    command = [
        # As `python -m schemathesis.cli`, without a CPython 3.11 race between its worker threads.
        sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "serial_ast.py"), "schemathesis.cli", "run", f"http://127.0.0.1:{port}/api/openapi.json",
        "--url", f"http://127.0.0.1:{port}",
        "--checks", ",".join(CHECKS + args.check),
        "--max-examples", str(args.max_examples),
        # A fixed seed by default, so a failure in CI reproduces; PUBSUB_SCHEMATHESIS_SEED explores.
        "--seed", os.environ.get("PUBSUB_SCHEMATHESIS_SEED", "25"),
        "--generation-database", "none",
        "--request-timeout", "10",
        "--workers", "2",
        "--no-color",
        # The SSE stream answers 200 and stays open until the topic is deleted or the server
        # stops: every call would run into the request timeout. Its errors (400, 401, 403, 404)
        # and its stream are tested over real sockets in SSETests.swift and in Chromium.
        "--exclude-path", "/api/topics/{name}/events",
    ]
    # GET /metrics is in the document for the builds that serve it; one that does not (404) would
    # fail every check, so it is left out here, and said so.
    if call(port, "GET", "/metrics", None) == 404:
        print("note: this build does not serve GET /metrics; schemathesis leaves it out")
        command += ["--exclude-path", "/metrics"]
    if args.bearer:
        command += ["--header", f"Authorization: Bearer {args.bearer}"]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        # schemathesis writes its reports (and hypothesis its files) under the working directory.
        # Under the Swift test's own limit (240 s), so this script, not the test, ends schemathesis.
        result = subprocess.run(command + ["--report", "har", "--report-dir", scratch], cwd=scratch, timeout=180)
        print(f"schemathesis took {time.monotonic() - started:.1f} s")
        if result.returncode != 0:
            return result.returncode
        seen = statuses(scratch)
    print("statuses seen: " + ", ".join(f"{status} x{count}" for status, count in sorted(seen.items())))
    missing = sorted(set(args.expect_status) - set(seen))
    if missing:
        print(f"no answer had status {missing}: the run did not reach what it is meant to check")
        return 1
    print(f"schemathesis ok: {args.label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
