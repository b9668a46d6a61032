"""Every manifest under deploy/ is valid Kubernetes and matches the real service.

Offline: the Kubernetes resources are validated with kubernetes-validate's bundled schemas;
for the custom resources (KServe InferenceService, KubeRay RayService) the pod specs they
embed are validated as Pods. Environment names and values are checked against
``service.plumbing.settings.Settings`` (its env prefix and fields, read from the class), probe paths
against the routes of the real app, the container arguments against the real
``rectifier serve`` options, ports against the containers' declared ports.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

from service.plumbing.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
K8S_VERSION = kubernetes_validate.latest_version()
ENV_PREFIX: str = Settings.model_config["env_prefix"] or ""
SETTING_VARIABLES = {f"{ENV_PREFIX}{name}".upper(): name for name in Settings.model_fields}
# KServe's component fields beside the PodSpec inlined in spec.predictor.
KSERVE_COMPONENT_FIELDS = {
    "minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "containerConcurrency",
    "timeout", "canaryTrafficPercent", "logger", "batcher", "annotations", "labels",
    "deploymentStrategy", "autoScaling",
}  # fmt: skip
READINESS_PATHS = {"/readyz", "/v2/health/ready"}  # 503 until every model is warm


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path, document))
    return found


MANIFESTS = manifests()
ids = [f"{path.relative_to(DEPLOY)}:{doc['kind']}" for path, doc in MANIFESTS]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in MANIFESTS if doc["kind"] == kind]


def pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod specs a manifest runs (as Kubernetes PodSpecs)."""
    kind = doc["kind"]
    if kind == "Deployment":
        yield doc["spec"]["template"]["spec"]
    elif kind == "InferenceService":
        predictor = doc["spec"]["predictor"]
        yield {k: v for k, v in predictor.items() if k not in KSERVE_COMPONENT_FIELDS}
    elif kind == "RayService":
        cluster = doc["spec"]["rayClusterConfig"]
        yield cluster["headGroupSpec"]["template"]["spec"]
        for group in cluster["workerGroupSpecs"]:
            yield group["template"]["spec"]


def containers(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for spec in pod_specs(doc):
        for container in spec["containers"]:
            yield spec, container


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


@pytest.fixture(scope="module")
def app_get_paths(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    from service.app.factory import create_app

    app = create_app(Settings(models_dir=tmp_path_factory.mktemp("models")))
    return {path for path, item in app.openapi()["paths"].items() if "get" in item}


def test_every_kind_is_covered():
    kinds = {doc["kind"] for _, doc in MANIFESTS}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "InferenceService",
        "RayService",
    } <= kinds
    gpu = [d for d in by_kind("Deployment") if "gpu" in d["metadata"]["name"]]
    assert gpu and all(c["resources"]["limits"]["nvidia.com/gpu"] for _, c in containers(gpu[0]))


@pytest.mark.parametrize(("path", "doc"), MANIFESTS, ids=ids)
def test_manifest_is_valid_against_the_kubernetes_schemas(path, doc):
    if doc["kind"] in {"InferenceService", "RayService"}:
        assert doc["apiVersion"] in {"serving.kserve.io/v1beta1", "ray.io/v1"}
        for spec in pod_specs(doc):
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec}
            kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_schema_violation_is_caught():
    """The validation above can fail: a misspelt field is an error."""
    doc = dict(by_kind("Deployment")[0])
    doc["spec"] = {**doc["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("path", "doc"), MANIFESTS, ids=ids)
def test_environment_names_and_values_are_real_settings(path, doc, tmp_path):
    for _, container in containers(doc):
        env = env_of(container)
        ours = {name: value for name, value in env.items() if name.startswith(ENV_PREFIX)}
        unknown = sorted(set(ours) - set(SETTING_VARIABLES))
        assert not unknown, f"{path.name}: no such setting {unknown}"
        fields = {SETTING_VARIABLES[name]: value for name, value in ours.items()}
        fields["models_dir"] = str(tmp_path)  # a folder that exists here
        load_settings(**fields)  # every value parses as the service would parse it


def serve_options(args: list[str]) -> dict[str, Any]:
    """Parse container args as the real ``rectifier`` CLI would, without running it."""
    from model.cli import app

    group = typer.main.get_command(app)
    root = group.make_context("rectifier", list(args), resilient_parsing=False)
    name, command, rest = group.resolve_command(root, list(args))  # type: ignore[attr-defined]
    assert name == "serve", args
    return dict(command.make_context(name, rest, parent=root).params)


def http_ports(container: dict[str, Any]) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[port["containerPort"]] = port["containerPort"]
        if "name" in port:
            ports[port["name"]] = port["containerPort"]
    return ports


@pytest.mark.parametrize(
    "doc", by_kind("Deployment") + by_kind("InferenceService"), ids=lambda d: d["metadata"]["name"]
)
def test_serving_pods_listen_probe_and_mount_as_the_service_expects(doc, app_get_paths):
    for spec, container in containers(doc):
        options = serve_options(container["args"])
        ports = http_ports(container)
        assert options["port"] in ports.values(), "the server listens on a declared port"
        assert options["host"] == "0.0.0.0"
        for probe in ("livenessProbe", "readinessProbe"):
            check = container[probe]["httpGet"]
            assert check["path"] in app_get_paths, f"{probe} {check['path']} is not a route"
            assert ports[check["port"]] == options["port"], f"{probe} asks another port"
        assert container["readinessProbe"]["httpGet"]["path"] in READINESS_PATHS
        # models from a read-only volume, at the folder the settings name
        models_dir = env_of(container)[f"{ENV_PREFIX}MODELS_DIR"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts[models_dir].get("readOnly") is True
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "persistentVolumeClaim" in volumes[mounts[models_dir]["name"]]
        # hardened: non-root, read-only root filesystem (uploads spool to a /tmp volume)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert "/tmp" in mounts
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_gpu_variant_asks_for_cuda_explicitly():
    from service.plumbing.settings import parse_device

    for doc in by_kind("Deployment"):
        for _, container in containers(doc):
            gpus = container["resources"].get("limits", {}).get("nvidia.com/gpu")
            device = env_of(container)[f"{ENV_PREFIX}DEVICE"]
            providers = parse_device(device) or []
            assert bool(gpus) == ("CUDAExecutionProvider" in providers), doc["metadata"]["name"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_services_hpa_and_pdb_point_at_the_deployments():
    deployments = {d["metadata"]["name"]: d for d in by_kind("Deployment")}
    for service in by_kind("Service"):
        targets = [
            d
            for d in deployments.values()
            if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(targets) == 1, f"service {service['metadata']['name']} selects {targets}"
        ports = {}
        for _, container in containers(targets[0]):
            ports.update(http_ports(container))
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
    for hpa in by_kind("HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    for pdb in by_kind("PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
        assert sum(selects(selector, pod_labels) for pod_labels in labels) == 1
    # a drain may evict a pod: the budget keeps fewer pods than the autoscaler's floor
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    (pdb,) = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_rayservice_deploys_the_real_application_builder(tmp_path):
    pytest.importorskip("ray.serve")
    (doc,) = by_kind("RayService")
    config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    (application,) = config["applications"]
    module_name, _, attribute = application["import_path"].partition(":")
    module = importlib.import_module(module_name)
    builder = getattr(module, attribute)
    args = dict(application["args"])
    allowed = set(Settings.model_fields) | set(module.SCALING_ARGS)
    assert set(args) <= allowed, sorted(set(args) - allowed)
    models_dir = args.pop("models_dir")
    for _, container in containers(doc):
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert models_dir in mounts
        assert set(env_of(container)) <= set(SETTING_VARIABLES)
    # the builder accepts the args (settings parse, scaling parses); no cluster is needed
    built = builder({**args, "models_dir": str(tmp_path)})
    assert type(built).__name__ == "Application"
