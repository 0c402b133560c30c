"""The Grafana dashboard in tools/grafana/ imports cleanly (the fields an
import needs, a declared data-source input, unique panel ids) and every
metric its queries name is one the server really exposes on /metrics."""

import json
import pathlib
import re

import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families

DASHBOARD = pathlib.Path(__file__).resolve().parents[2] / "tools" / "grafana" / "ringgate.json"
# Words in a PromQL expression that are not metric names.
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "le", "route", "direction",
                "status", "kind", "code", "side", "shard", "reason", "op"}


def test_dashboard_imports_and_names_real_metrics(server):
    dash = json.loads(DASHBOARD.read_text())
    for key in ["title", "uid", "schemaVersion", "panels", "__inputs"]:
        assert key in dash, key
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"

    text = requests.get(f"http://{server.host}:{server.port}/metrics", timeout=10).text
    exposed = set()
    for family in text_string_to_metric_families(text):
        # A family without samples yet (no handshakes so far) still counts.
        exposed.update([family.name, family.name + "_total", family.name + "_bucket"])
        exposed.update(s.name for s in family.samples)
    for panel in dash["panels"]:
        assert panel["gridPos"]["w"] > 0 and panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            names = set(re.findall(r"[a-z_][a-z0-9_]*", re.sub(r"\[[^]]*\]|\"[^\"]*\"", "", target["expr"])))
            for name in names - PROMQL_WORDS:
                if re.fullmatch(r"\d.*", name):
                    continue
                assert name in exposed, f"{panel['title']}: {name} is not on /metrics"
