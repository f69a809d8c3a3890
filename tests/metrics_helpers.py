"""Reading a /metrics page as Prometheus would."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(page: str) -> Samples:
    """Every sample of a text-format page, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when the page has none."""
    return found.get((name, tuple(sorted(labels.items()))), 0.0)
