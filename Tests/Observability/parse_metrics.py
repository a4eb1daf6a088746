"""Reads a pubsub server's /metrics with the Prometheus client library's own text parser
(prometheus_client.parser) and prints what it parsed as JSON, for ObservabilityTests:
{"families": {name: {"type": ..., "samples": [[sample name, labels, value], ...]}}}.
A line the parser refuses fails the script (exit 1) with the parser's error."""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
with urllib.request.urlopen(url, timeout=10) as response:
    content_type = response.headers.get("Content-Type", "")
    text = response.read().decode("utf-8")
families = {}
for family in text_string_to_metric_families(text):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps({"content_type": content_type, "families": families}))
