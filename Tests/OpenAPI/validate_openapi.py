#!/usr/bin/env python3
"""Fetches GET /api/openapi.json from a running server on 127.0.0.1 and validates it as an
OpenAPI 3.1 document with openapi-spec-validator (pinned in scripts/install-test-deps.sh).

usage: validate_openapi.py PORT
Prints "openapi document valid (N operations)" and exits 0, or says what is wrong and exits 1.
"""
import json
import sys
import urllib.request

from openapi_spec_validator import OpenAPIV31SpecValidator


def main() -> int:
    port = int(sys.argv[1])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json", timeout=10) as response:
        content_type = response.headers.get("Content-Type", "")
        document = json.loads(response.read())
    if content_type.split(";")[0].strip() != "application/json":
        print(f"served as {content_type!r}, not application/json")
        return 1
    if document.get("openapi", "").split(".")[:2] != ["3", "1"]:
        print(f"openapi is {document.get('openapi')!r}, not 3.1.x")
        return 1
    # Every error, not just the first: one run shows all that needs fixing.
    errors = list(OpenAPIV31SpecValidator(document).iter_errors())
    for error in errors:
        print(f"invalid: {'/'.join(str(p) for p in error.absolute_path)}: {error.message[:300]}")
    if errors:
        return 1
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    operations = sum(1 for item in document["paths"].values() for key in item if key in methods)
    print(f"openapi document valid ({operations} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
