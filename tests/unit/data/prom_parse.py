"""Parses Prometheus text exposition format with the real client library
(Debian's python3-prometheus-client) and prints what it read as JSON, so a
C++ test can compare. Exits non-zero on a parse error."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def num(v):
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return v


text = open(sys.argv[1], encoding="utf-8").read()
out = []
for fam in text_string_to_metric_families(text):
    out.append({
        "name": fam.name,
        "type": fam.type,
        "help": fam.documentation,
        "samples": [{"name": s.name, "labels": s.labels, "value": num(s.value),
                     "timestamp": s.timestamp} for s in fam.samples],
    })
json.dump(out, sys.stdout)
