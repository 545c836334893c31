"""Write the PrometheusRule custom resource for prometheus-operator from the plain rules file.

    python3 deploy/prometheus/make_prometheusrule.py          # rewrites deploy/k8s/base/prometheusrule.yaml

``rules.yml`` stays the single source because promtool can check it; the CR only wraps its groups.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.yml"
CUSTOM_RESOURCE = HERE.parent / "k8s" / "base" / "prometheusrule.yaml"
HEADER = (
    "# GENERATED from deploy/prometheus/rules.yml by deploy/prometheus/make_prometheusrule.py: edit those.\n"
)


def render(rules_text: str) -> str:
    """The PrometheusRule YAML whose ``spec.groups`` are the groups of ``rules_text``."""
    groups = yaml.safe_load(rules_text)["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        # prometheus-operator's default ruleSelector matches the `release`/`role` label chosen at install;
        # `role: alert-rules` is the documented convention, see docs/operations.md.
        "metadata": {"name": "stream-tagger", "labels": {"role": "alert-rules"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(resource, sort_keys=False, width=120)


def main() -> int:
    CUSTOM_RESOURCE.write_text(render(RULES.read_text()))
    print(f"wrote {CUSTOM_RESOURCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
