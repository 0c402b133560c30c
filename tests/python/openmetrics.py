"""Reading the server's /metrics answer (OpenMetrics text) in tests."""

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def samples(text):
    """{(name, frozenset(labels)): value} of an OpenMetrics answer."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out
