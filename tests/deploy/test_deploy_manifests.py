"""The kustomize overlays, rendered by the real kustomize and validated offline against Kubernetes schemas."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import K8S, OVERLAYS, REPO

KUBERNETES_VERSION = "1.33.0"
# Custom resources whose schemas are not part of Kubernetes: checked by the targeted tests below
# (PrometheusRule: promtool on its groups; ScaledObject, ServiceMonitor: their wiring) instead.
CUSTOM_KINDS = {"PrometheusRule", "ServiceMonitor", "ScaledObject", "TriggerAuthentication"}
POD_OWNERS = ("Deployment", "CronJob", "Job")


def by_kind(documents: list[dict], kind: str) -> list[dict]:
    return [doc for doc in documents if doc["kind"] == kind]


def one(documents: list[dict], kind: str) -> dict:
    (document,) = by_kind(documents, kind)
    return document


def pod_spec(document: dict) -> dict:
    spec = document["spec"]
    if document["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def worker(documents: list[dict]) -> dict:
    (container,) = pod_spec(one(documents, "Deployment"))["containers"]
    return container


def settings(documents: list[dict]) -> dict[str, str]:
    return next(
        doc
        for doc in by_kind(documents, "ConfigMap")
        if doc["metadata"]["name"].startswith("stream-tagger-settings")
    )["data"]


@pytest.mark.parametrize("name", [*OVERLAYS, "rebuild-job", "rollback-job"])
def test_every_builtin_manifest_is_valid(rendered: dict[str, list[dict]], name: str) -> None:
    # Given the rendered manifests; When each built-in kind is validated strictly (unknown fields fail)
    checked = set()
    for document in rendered[name]:
        if document["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        checked.add(document["kind"])
    # Then every kind was checked
    expected = (
        {"Job"}
        if name.endswith("-job")
        else {
            "Namespace",
            "ServiceAccount",
            "ConfigMap",
            "Service",
            "PersistentVolumeClaim",
            "Deployment",
            "CronJob",
            "PodDisruptionBudget",
            "NetworkPolicy",
        }
    )
    assert checked == expected


def test_validation_rejects_a_broken_deployment(rendered: dict[str, list[dict]]) -> None:
    # Given the valid Deployment with a misspelt field and a wrong type
    broken = copy.deepcopy(one(rendered["cpu"], "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    # Then strict validation fails (so the test above checks something)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(one(rendered["cpu"], "Deployment"))
    broken["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", [*OVERLAYS, "rebuild-job", "rollback-job"])
def test_pods_are_non_root_read_only_and_unprivileged(rendered: dict[str, list[dict]], name: str) -> None:
    owners = [doc for doc in rendered[name] if doc["kind"] in POD_OWNERS]
    assert owners
    for owner in owners:
        spec = pod_spec(owner)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, "read-only root needs a writable /tmp emptyDir"


@pytest.mark.parametrize("name", OVERLAYS)
def test_worker_probes_and_metrics_service(rendered: dict[str, list[dict]], name: str) -> None:
    documents = rendered[name]
    container = worker(documents)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = next(p for p in container["ports"] if p["name"] == "metrics")["containerPort"]
    assert settings(documents)["STREAM_TAGGER_METRICS_PORT"] == str(port)
    service = one(documents, "Service")
    pod_labels = one(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = one(documents, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("name", OVERLAYS)
def test_secrets_are_referenced_never_inlined(rendered: dict[str, list[dict]], name: str) -> None:
    documents = rendered[name]
    assert not by_kind(documents, "Secret")
    env = {item["name"]: item for item in worker(documents)["env"]}
    assert env["STREAM_TAGGER_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "stream-tagger-kafka"
    assert not any("PASSWORD" in key for key in settings(documents))


def test_gpu_overlay_requests_a_gpu_and_uses_tensorrt(rendered: dict[str, list[dict]]) -> None:
    gpu, cpu = rendered["gpu"], rendered["cpu"]
    resources = worker(gpu)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1 == resources["requests"]["nvidia.com/gpu"]
    assert (
        settings(gpu)["STREAM_TAGGER_BACKEND"] == "tensorrt"
        and settings(gpu)["STREAM_TAGGER_DECODER"] == "nvdec"
    )
    assert "worker-gpu" in worker(gpu)["image"]
    assert "nvidia.com/gpu" not in worker(cpu)["resources"].get("limits", {})
    assert settings(cpu)["STREAM_TAGGER_BACKEND"] == "onnxruntime" and "worker-cpu" in worker(cpu)["image"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_keda_scales_the_worker_on_lag_within_the_partition_count(
    rendered: dict[str, list[dict]], name: str
) -> None:
    documents = rendered[name]
    scaled = one(documents, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == one(documents, "Deployment")["metadata"]["name"]
    partitions = int(scaled["metadata"]["annotations"]["stream-tagger/input-topic-partitions"])
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= partitions
    (trigger,) = scaled["spec"]["triggers"]
    config = settings(documents)
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["bootstrapServers"] == config["STREAM_TAGGER_BROKERS"]
    assert trigger["metadata"]["consumerGroup"] == config["STREAM_TAGGER_GROUP_ID"]
    assert trigger["metadata"]["topic"] == config["STREAM_TAGGER_INPUT_TOPIC"]
    assert trigger["metadata"]["allowIdleConsumers"] == "false"
    assert trigger["authenticationRef"]["name"] == one(documents, "TriggerAuthentication")["metadata"]["name"]


def test_one_shot_job_runs_the_cronjobs_pod(rendered: dict[str, list[dict]]) -> None:
    cron = one(rendered["cpu"], "CronJob")
    job = one(rendered["rebuild-job"], "Job")
    assert job["spec"] == cron["spec"]["jobTemplate"]["spec"]
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    assert (
        volumes["engines"]["persistentVolumeClaim"]["claimName"]
        == one(rendered["cpu"], "PersistentVolumeClaim")["metadata"]["name"]
    )
    script = volumes["script"]["configMap"]["name"]
    assert any(doc["metadata"]["name"] == script for doc in by_kind(rendered["cpu"], "ConfigMap"))


def test_prometheusrule_in_the_overlays_is_the_rules_file(rendered: dict[str, list[dict]]) -> None:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules.yml").read_text())
    for name in OVERLAYS:
        assert one(rendered[name], "PrometheusRule")["spec"]["groups"] == rules["groups"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_configmap_and_env_are_valid_worker_settings(
    rendered: dict[str, list[dict]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the worker's settings class (pydantic-settings, prefix STREAM_TAGGER_, unknown names ignored)
    settings_module = pytest.importorskip(
        "stream_tagger.settings", reason="the worker's settings are not written yet"
    )
    fields = {field.upper() for field in settings_module.Settings.model_fields}
    config = settings(rendered[name])
    env = {item["name"] for item in worker(rendered[name])["env"]}
    # Then every variable the manifests set names a field (a typo would be silently ignored otherwise)
    for variable in set(config) | env:
        assert variable.removeprefix("STREAM_TAGGER_") in fields, variable
    # And the ConfigMap's values parse, with the Secret's values standing in
    for variable, value in {
        **config,
        "STREAM_TAGGER_SASL_USERNAME": "u",
        "STREAM_TAGGER_SASL_PASSWORD": "p",
    }.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(REPO / "deploy")  # no stray .env is read
    parsed = settings_module.Settings()
    assert parsed.backend == config["STREAM_TAGGER_BACKEND"] and parsed.metrics_port == int(
        config["STREAM_TAGGER_METRICS_PORT"]
    )
    assert parsed.security_protocol == "SASL_SSL" and str(parsed.ssl_cafile).endswith("ca.crt")


def test_base_lists_every_manifest_file() -> None:
    # Guard: the base kustomization lists every manifest file in its folder
    base = K8S / "base"
    listed = set(yaml.safe_load((base / "kustomization.yaml").read_text())["resources"])
    assert listed == {path.name for path in base.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("name", [*OVERLAYS, "rebuild-job", "rollback-job"])
def test_every_image_is_a_tagged_registry_image(rendered: dict[str, list[dict]], name: str) -> None:
    # The base's short names (stream-tagger, stream-tagger-trainer) must all be replaced by the overlay
    images = [
        c["image"] for doc in rendered[name] if doc["kind"] in POD_OWNERS for c in pod_spec(doc)["containers"]
    ]
    assert images
    for image in images:
        repository, _, tag = image.rpartition(":")
        assert "/" in repository and tag and tag != "latest", image
