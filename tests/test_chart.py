"""The Helm chart, checked with the real tools: helm 3.18 (`.tools/bin/helm`, from
`scripts/install-helm.sh`), kubernetes-validate (the Kubernetes API schemas of 1.25 and 1.32),
promtool (`.tools/bin/promtool`) and eventpipe's own config loader.

Every value set in `charts/eventpipe/ci/` (plus the defaults) is linted with `--strict`,
rendered for each Kubernetes version, and every built-in manifest validated in strict mode
(unknown fields fail). ServiceMonitor and PrometheusRule are CRDs kubernetes-validate has no
schema for: they are not given to it; the PrometheusRule's rules go through `promtool check
rules` instead and the ServiceMonitor is checked against the Service here.

`python -m tests.test_chart` rewrites the `config` part of values.schema.json from
`eventpipe config schema`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from eventpipe.cli import cli

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "eventpipe"
HELM = ROOT / ".tools" / "bin" / "helm"
PROMTOOL = ROOT / ".tools" / "bin" / "promtool"
EXAMPLE_RULES = ROOT / "examples" / "prometheus" / "rules.yaml"
KUBE_VERSIONS = ("1.25.0", "1.32.0")
CASES = ("defaults", "persistence-off", "namespaced", "monitoring", "leader-election",
         "env-from-secret", "ha")
LEASE_CASES = {"leader-election", "ha"}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# What the env-from-secret case's Secret and extraEnv provide, for `config validate`.
CASE_ENV = {"WEBHOOK_TOKEN": "s3cret", "CLUSTER_NAME": "prod-eu-1"}
# The embedded config schema is its own resource, so its "#/$defs/..." refs resolve inside it.
CONFIG_SCHEMA_ID = "https://eventpipe.invalid/config.schema.json"


def helm(*args: str) -> str:
    """Run the installed helm; a missing helm is a failure, not a skip."""
    if not HELM.is_file():
        pytest.fail(f"{HELM} is missing: run `make install` (scripts/install-helm.sh)")
    proc = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60)
    if proc.returncode:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def values_args(case: str) -> list[str]:
    return [] if case == "defaults" else ["-f", str(CHART / "ci" / f"{case}-values.yaml")]


def render(case: str, kube_version: str = KUBE_VERSIONS[-1], *extra: str) -> list[dict[str, Any]]:
    out = helm("template", "rel", str(CHART), "--namespace", "obs",
               "--kube-version", kube_version, *values_args(case), *extra)
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every case for every Kubernetes version, rendered once (in parallel: ~12 helm runs)."""
    keys = [(case, version) for case in CASES for version in KUBE_VERSIONS]
    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(zip(keys, pool.map(lambda key: render(*key), keys), strict=True))


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def config_of(docs: list[dict[str, Any]]) -> str:
    # The config's ConfigMap; the Grafana dashboard's (grafanaDashboard) is another.
    text: str = only([d for d in docs if "config.yaml" in d.get("data", {})], "ConfigMap")[
        "data"]["config.yaml"]
    return text


@pytest.mark.parametrize("case", CASES)
def test_lint_strict(case: str) -> None:
    for version in KUBE_VERSIONS:
        helm("lint", "--strict", str(CHART), "--kube-version", version, *values_args(case))


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_manifests_match_the_api_schemas(rendered: dict[tuple[str, str], list[dict[str, Any]]],
                                         case: str, version: str) -> None:
    checked = set()
    for doc in rendered[case, version]:
        if doc["kind"] in CRD_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {path}: "
                        f"{exc.message}")
        checked.add(doc["kind"])
    assert {"StatefulSet", "ConfigMap", "Service", "ServiceAccount", "Pod"} <= checked


@pytest.mark.parametrize("case", CASES)
def test_rendered_config_passes_config_validate(
        rendered: dict[tuple[str, str], list[dict[str, Any]]], case: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(config_of(rendered[case, KUBE_VERSIONS[-1]]))
    result = CliRunner().invoke(cli, ["config", "validate", str(path)], env=CASE_ENV)
    assert result.exit_code == 0, result.output
    spool = yaml.safe_load(path.read_text())["spool"]["path"]
    assert spool.startswith("/var/lib/eventpipe/"), "the spool must be on the PVC mount"


def test_values_schema_config_equals_eventpipe_config_schema() -> None:
    printed = CliRunner().invoke(cli, ["config", "schema"])
    assert printed.exit_code == 0, printed.output
    embedded = dict(json.loads((CHART / "values.schema.json").read_text())["properties"]["config"])
    assert embedded.pop("$id") == CONFIG_SCHEMA_ID
    assert embedded == json.loads(printed.output), (
        "values.schema.json is stale: run `.venv/bin/python -m tests.test_chart`")


def test_values_schema_rejects_a_bad_config() -> None:
    """The embedded schema is live in helm (its refs resolve): a typo fails `helm lint`."""
    with pytest.raises(AssertionError, match="bogusKey"):
        helm("lint", str(CHART), "--set", "config.spool.bogusKey=1")
    with pytest.raises(AssertionError, match="receivers"):
        helm("lint", str(CHART), "--set", "config.receivers[0].name=x",
             "--set", "config.receivers[0].file.path=3")


def rbac_rules(docs: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            for rule in doc["rules"]:
                yield doc["kind"], doc["metadata"].get("namespace", ""), rule


ENRICH_RESOURCES = {"pods", "nodes", "replicasets", "deployments", "statefulsets", "daemonsets",
                    "jobs", "cronjobs"}


def test_omit_lookup_drops_the_enrichment_rules() -> None:
    docs = render("defaults", KUBE_VERSIONS[-1], "--set", "config.omitLookup=true")
    assert {tuple(r["resources"]) for _, _, r in rbac_rules(docs)} == {("events",)}
    docs = render("defaults", KUBE_VERSIONS[-1])
    assert "pods" in {res for _, _, r in rbac_rules(docs) for res in r["resources"]}


@pytest.mark.parametrize("case", CASES)
def test_rbac_grants_only_what_is_used(rendered: dict[tuple[str, str], list[dict[str, Any]]],
                                       case: str) -> None:
    docs = rendered[case, KUBE_VERSIONS[-1]]
    for _, namespace, rule in rbac_rules(docs):
        if rule["resources"] == ["events"]:
            assert rule["apiGroups"] == ["", "events.k8s.io"]
            assert rule["verbs"] == ["get", "list", "watch"]
        elif rule["apiGroups"] != ["coordination.k8s.io"]:
            # enrichment: read-only metadata caches (list+watch) and GETs of the involved
            # objects and their owners
            assert rule["verbs"] == ["get", "list", "watch"]
            assert set(rule["resources"]) <= ENRICH_RESOURCES
            assert "nodes" not in rule["resources"] or namespace == ""
        else:
            assert rule["resources"] == ["leases"] and case in LEASE_CASES
            assert rule["apiGroups"] == ["coordination.k8s.io"] and namespace == "obs"
            assert set(rule["verbs"]) <= {"get", "create", "update"}
    kinds = [doc["kind"] for doc in docs]
    if case == "namespaced":
        assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
        roles = {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"}
        bindings = {d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding"}
        assert roles == bindings == {"team-a", "team-b"}
    else:
        assert kinds.count("ClusterRole") == kinds.count("ClusterRoleBinding") == 1
    if case == "leader-election":
        verbs = {v for _, _, r in rbac_rules(docs) if r["resources"] == ["leases"]
                 for v in r["verbs"]}
        assert verbs == {"get", "create", "update"}
        named = [r for _, _, r in rbac_rules(docs) if "resourceNames" in r]
        assert named and all(r["resourceNames"] == ["eventpipe-leader"] for r in named)


@pytest.mark.parametrize("case", CASES)
def test_the_statefulset_runs_as_the_chart_service_account(
        rendered: dict[tuple[str, str], list[dict[str, Any]]], case: str) -> None:
    docs = rendered[case, KUBE_VERSIONS[-1]]
    account = only(docs, "ServiceAccount")["metadata"]["name"]
    pod = only(docs, "StatefulSet")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                        "namespace": "obs"}]


def test_statefulset_defaults(rendered: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    docs = rendered["defaults", KUBE_VERSIONS[-1]]
    sts = only(docs, "StatefulSet")["spec"]
    pod, (container,) = sts["template"]["spec"], sts["template"]["spec"]["containers"]
    assert sts["replicas"] == 1
    assert container["args"] == ["run", "--config", "/etc/eventpipe/config.yaml"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["config"] == "/etc/eventpipe" and mounts["spool"] == "/var/lib/eventpipe"
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert container["ports"] == [{"name": "metrics", "containerPort": 2112, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "96Mi"},
                                      "limits": {"memory": "128Mi"}}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["runAsUser"] == 10001
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert only(docs, "Service")["spec"]["ports"][0]["port"] == 2112


@pytest.mark.parametrize("case", CASES)
def test_pods_meet_the_restricted_pod_security_standard(
        rendered: dict[tuple[str, str], list[dict[str, Any]]], case: str) -> None:
    docs = rendered[case, KUBE_VERSIONS[0]]
    pods = [only(docs, "StatefulSet")["spec"]["template"]["spec"], only(docs, "Pod")["spec"]]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}


def test_config_checksum_follows_the_config(
        rendered: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    def checksum(case: str) -> str:
        sts = only(rendered[case, KUBE_VERSIONS[-1]], "StatefulSet")
        value: str = sts["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value
    assert len(checksum("defaults")) == len(hashlib.sha256().hexdigest())
    assert checksum("defaults") != checksum("env-from-secret")
    assert checksum("defaults") == checksum("persistence-off")  # same config, same pod


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """NOTES.txt of a case. helm template does not render NOTES.txt; a copy of the chart
    includes it in a ConfigMap."""
    chart = shutil.copytree(CHART, tmp_path_factory.mktemp("notes") / "eventpipe")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |\n"
        '    {{- include (print $.Template.BasePath "/NOTES.txt") . | nindent 4 }}\n')
    def render_notes(case: str) -> str:
        out = helm("template", "rel", str(chart), "--namespace", "obs",
                   "--show-only", "templates/zz-notes.yaml", *values_args(case))
        text: str = yaml.safe_load(out)["data"]["notes"]
        return text
    return render_notes


def test_persistence_off_uses_an_empty_dir_and_warns(
        rendered: dict[tuple[str, str], list[dict[str, Any]]],
        notes: Callable[[str], str]) -> None:
    sts = only(rendered["persistence-off", KUBE_VERSIONS[-1]], "StatefulSet")["spec"]
    assert "volumeClaimTemplates" not in sts
    volumes = {v["name"]: v for v in sts["template"]["spec"]["volumes"]}
    assert volumes["spool"] == {"name": "spool", "emptyDir": {}}
    assert "WARNING: persistence.enabled=false" in notes("persistence-off")
    assert "WARNING" not in notes("defaults")
    assert "team-a, team-b (namespace-scoped" in notes("namespaced")


def test_ha_runs_leader_elected_replicas_with_a_spool_each(
        rendered: dict[tuple[str, str], list[dict[str, Any]]],
        notes: Callable[[str], str]) -> None:
    docs = rendered["ha", KUBE_VERSIONS[-1]]
    sts = only(docs, "StatefulSet")["spec"]
    assert sts["replicas"] == 2
    # One claim template = one PVC per pod (spool-rel-eventpipe-0, -1): a spool per replica.
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"
    (container,) = sts["template"]["spec"]["containers"]
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # identity / namespace left empty: eventpipe falls back to POD_NAME / POD_NAMESPACE.
    election = yaml.safe_load(config_of(docs))["leaderElection"]
    assert election == {"enabled": True}
    (term,) = sts["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == sts["selector"][
        "matchLabels"]
    pdb = only(docs, "PodDisruptionBudget")["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": sts["selector"]}
    leases = [r for _, ns, r in rbac_rules(docs) if r["resources"] == ["leases"] and ns == "obs"]
    assert {v for r in leases for v in r["verbs"]} == {"get", "create", "update"}
    text = notes("ha")
    assert "2 replica(s) compete for Lease eventpipe in namespace obs" in text
    assert "at-least-once" in text and "its own spool" in text
    assert "not implemented" not in text and "not implemented" not in notes("leader-election")
    assert "One replica." in notes("defaults")


def test_several_replicas_without_leader_election_fail_to_render() -> None:
    with pytest.raises(AssertionError, match=r"replicaCount=2 needs "
                                             r"config\.leaderElection\.enabled=true"):
        render("defaults", KUBE_VERSIONS[-1], "--set", "replicaCount=2")
    with pytest.raises(AssertionError, match="replicaCount=3 needs"):
        render("leader-election", KUBE_VERSIONS[-1], "--set", "replicaCount=3",
               "--set", "config.leaderElection.enabled=false")
    # A literal identity would be shared by every replica; a per-pod reference is fine.
    with pytest.raises(AssertionError, match="identity=\"me\" would be the same"):
        render("ha", KUBE_VERSIONS[-1], "--set", "config.leaderElection.identity=me")
    docs = render("ha", KUBE_VERSIONS[-1],
                  "--set", "config.leaderElection.identity=${POD_NAME}")
    assert only(docs, "StatefulSet")["spec"]["replicas"] == 2
    # One replica needs no leader election, and a literal identity is fine there.
    docs = render("defaults", KUBE_VERSIONS[-1], "--set", "replicaCount=1",
                  "--set", "config.leaderElection.enabled=true",
                  "--set", "config.leaderElection.identity=me")
    assert only(docs, "StatefulSet")["spec"]["replicas"] == 1


def test_pdb_follows_replicas_unless_forced(
        rendered: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    kinds = [d["kind"] for d in rendered["defaults", KUBE_VERSIONS[-1]]]
    assert "PodDisruptionBudget" not in kinds
    assert "affinity" not in only(rendered["defaults", KUBE_VERSIONS[-1]],
                                  "StatefulSet")["spec"]["template"]["spec"]
    off = render("ha", KUBE_VERSIONS[-1], "--set", "pdb.enabled=false",
                 "--set-json", 'affinity={"podAffinity": {}}')
    assert "PodDisruptionBudget" not in [d["kind"] for d in off]
    # An explicit affinity replaces the default anti-affinity.
    assert only(off, "StatefulSet")["spec"]["template"]["spec"]["affinity"] == {
        "podAffinity": {}}


def test_lease_rbac_follows_the_lease_namespace() -> None:
    docs = render("ha", KUBE_VERSIONS[-1], "--set", "config.leaderElection.namespace=leases")
    lease_namespaces = {ns for _, ns, r in rbac_rules(docs) if r["resources"] == ["leases"]}
    assert lease_namespaces == {"leases"}
    binding = [d for d in docs if d["metadata"]["name"].endswith("-leader-election")
               and d["kind"] == "RoleBinding"]
    assert [b["metadata"]["namespace"] for b in binding] == ["leases"]


def test_env_from_secret_and_extra_env(
        rendered: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    sts = only(rendered["env-from-secret", KUBE_VERSIONS[-1]], "StatefulSet")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "eventpipe-sinks"}}]
    assert {"name": "CLUSTER_NAME", "value": "prod-eu-1"} in container["env"]
    assert "${WEBHOOK_TOKEN}" in config_of(rendered["env-from-secret", KUBE_VERSIONS[-1]])


def test_monitoring_objects(rendered: dict[tuple[str, str], list[dict[str, Any]]],
                            tmp_path: Path) -> None:
    docs = rendered["monitoring", KUBE_VERSIONS[-1]]
    service, monitor = only(docs, "Service"), only(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    # job = the Service's app.kubernetes.io/name, which the rules' up{job="eventpipe"} expects.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "eventpipe"
    assert only(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    policy = only(docs, "NetworkPolicy")["spec"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    test_pod = only(docs, "Pod")["metadata"]["labels"]
    assert {"podSelector": {"matchLabels": test_pod}} in ingress["from"]
    egress_ports = [p["port"] for rule in policy["egress"] for p in rule.get("ports", [])]
    assert egress_ports == [53, 53, 443, 6443, 3100]  # DNS, API server, extraEgress (Loki)
    groups = only(docs, "PrometheusRule")["spec"]["groups"]
    assert [g["name"] for g in groups] == ["kubernetes-events", "eventpipe", "eventpipe-extra"]
    promtool_check(groups, tmp_path / "rules.yaml")


def test_rule_names_follow_metrics_name_prefix(tmp_path: Path) -> None:
    docs = render("monitoring", KUBE_VERSIONS[-1], "--set", "config.metricsNamePrefix=k8s_")
    text = yaml.safe_dump(only(docs, "PrometheusRule")["spec"])
    assert "k8s_events_total" in text and "event_exporter_events_total" not in text


def promtool_check(groups: list[dict[str, Any]], path: Path) -> None:
    if not PROMTOOL.is_file():
        pytest.fail(f"{PROMTOOL} is missing: run `make install` (scripts/install-prometheus.sh)")
    path.write_text(yaml.safe_dump({"groups": groups}))
    proc = subprocess.run([str(PROMTOOL), "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_chart_rules_equal_the_example_rules() -> None:
    chart = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())["groups"]
    example = yaml.safe_load(EXAMPLE_RULES.read_text())["groups"]
    def by_name(groups: list[dict[str, Any]]) -> dict[str, Any]:
        return {f"{g['name']}/{r.get('alert') or r.get('record')}": r
                for g in groups for r in g["rules"]}

    chart_rules, example_rules = by_name(chart), by_name(example)
    differ = sorted(name for name in chart_rules.keys() | example_rules.keys()
                    if chart_rules.get(name) != example_rules.get(name))
    assert not differ and chart == example, (
        f"charts/eventpipe/files/prometheus-rules.yaml differs from {EXAMPLE_RULES.name} "
        f"(rules {differ or 'order'}): copy the example's groups over")


def write_values_schema() -> None:
    """Refresh values.schema.json's `config` from the models (`eventpipe config schema`)."""
    path = CHART / "values.schema.json"
    schema = json.loads(path.read_text())
    printed = CliRunner().invoke(cli, ["config", "schema"]).output
    schema["properties"]["config"] = {"$id": CONFIG_SCHEMA_ID, **json.loads(printed)}
    path.write_text(json.dumps(schema, indent=2) + "\n")


if __name__ == "__main__":
    write_values_schema()
    sys.exit(0)
