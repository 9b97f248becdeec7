"""deploy/k8s renders with kubectl kustomize, validates offline against the Kubernetes and the
operators' schemas, is current with the topic registry, and keeps the security baseline."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from hvc.common.topics import TOPICS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CRDS = K8S / "crds"
KUBERNETES = "1.32"
# Strimzi's KafkaUser CRD is not among the published schemas we hold: its objects are
# checked by the ACL test below instead. Nothing else may go unvalidated.
NO_SCHEMA = {("kafka.strimzi.io/v1", "KafkaUser")}


@functools.cache
def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def strict(schema: Any) -> Any:
    """Reject unknown fields, as `kubectl apply --validate=strict` does: an object schema
    that lists its properties is closed unless it says it keeps unknown fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            schema = strict(v["schema"]["openAPIV3Schema"])
            # The API server fills these; the schemas describe them loosely or not at all.
            schema["properties"]["metadata"] = {"type": "object"}
            schema["properties"].setdefault("status", {"type": "object"})
            schemas[(f"{group}/{v['name']}", kind)] = schema
    return schemas


def test_generated_manifests_are_current():
    run = subprocess.run(
        [sys.executable, str(K8S / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_every_registry_topic_has_its_kafka_topic():
    topics = {d["spec"]["topicName"]: d for d in render("prod") if d["kind"] == "KafkaTopic"}
    assert set(topics) == {t.name for t in TOPICS}
    for t in TOPICS:
        spec = topics[t.name]["spec"]
        assert (spec["partitions"], spec["replicas"]) == (t.partitions, t.replicas)
        assert spec["config"]["retention.ms"] == str(t.retention_ms)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_object_validates_against_its_schema(overlay):
    schemas = crd_schemas()
    unvalidated = set()
    for doc in render(overlay):
        key = (doc["apiVersion"], doc["kind"])
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if key in schemas:
            jsonschema.validate(doc, schemas[key])
        elif (
            "/" in doc["apiVersion"]
            and "." in doc["apiVersion"].split("/")[0]
            and not doc["apiVersion"].startswith(
                ("apps/", "policy/", "autoscaling/", "networking.k8s.io/")
            )
        ):
            unvalidated.add(key)
        else:
            try:
                kubernetes_validate.validate(doc, KUBERNETES, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{overlay}: {name}: {exc.message}")
    assert unvalidated <= NO_SCHEMA


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_workloads_keep_the_security_baseline(overlay):
    deployments = [d for d in render(overlay) if d["kind"] == "Deployment"]
    assert len(deployments) == 5
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and sc["runAsNonRoot"]
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert not sc["allowPrivilegeEscalation"]
            assert c["resources"]["requests"] and c["resources"]["limits"]
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 300


def test_production_connections_are_authenticated_and_encrypted():
    docs = render("prod")
    env = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("hvc-env")
    )["data"]
    assert env["HVC_PROFILE"] == "production"
    assert (env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"]) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert env["MONGO_TLS"] == "true"
    for d in (d for d in docs if d["kind"] == "Deployment"):
        names = {e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert {"KAFKA_SASL_PASSWORD", "MONGO_URI", "KAFKA_SASL_USERNAME"} <= names
    kafka = next(d for d in docs if d["kind"] == "Kafka")
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert all(lst["tls"] and lst["authentication"]["type"] == "scram-sha-512" for lst in listeners)
    mongo = next(d for d in docs if d["kind"] == "MongoDBCommunity")
    assert mongo["spec"]["security"]["tls"]["enabled"] and mongo["spec"]["members"] == 3
    for user in mongo["spec"]["users"]:
        if user["name"] == "hvc-gateway":  # only adds to and reads its audit trail
            assert user["roles"] == [{"name": "hvcGatewayAppendOnly", "db": "admin"}]
            continue
        assert user["roles"] == [{"name": "readWrite", "db": user["name"].replace("-", "_")}]
    (role,) = mongo["spec"]["security"]["roles"]
    actions = {p["resource"]["collection"]: set(p["actions"]) for p in role["privileges"]}
    assert set(actions) == {"audit", "idempotency_keys"}
    assert all(not a & {"update", "remove", "dropCollection"} for a in actions.values())
    dev_env = next(
        d
        for d in render("dev")
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("hvc-env")
    )["data"]
    assert dev_env["HVC_PROFILE"] == "development"


def test_kafka_users_may_touch_only_their_own_topics_and_group():
    from hvc.tiering.pipeline import INPUTS

    users = {d["metadata"]["name"]: d for d in render("prod") if d["kind"] == "KafkaUser"}
    assert set(users) == {
        f"hvc-{s}" for s in ("tiering", "warnings", "benefits", "complaints", "gateway", "keda")
    }
    acls = users["hvc-tiering"]["spec"]["authorization"]["acls"]
    reads = {
        a["resource"]["name"]
        for a in acls
        if "Read" in a["operations"]
        and a["resource"]["type"] == "topic"
        and a["resource"]["patternType"] == "literal"
    }
    writes = {
        a["resource"]["name"]
        for a in acls
        if "Write" in a["operations"] and a["resource"]["patternType"] == "literal"
    }
    assert reads == set(INPUTS)
    assert writes == {
        "hvc.tier-decisions.v1",
        "hvc.notifications.v1",
        "hvc.tiering-commands.v1",  # its HTTP side's and its pipeline's own commands
        "hvc.group-files.v1",  # the groups' files, for the warnings pipeline's visits
    } | {f"{t}.dlq" for t in INPUTS}
    groups = [
        (a["resource"]["name"], a["resource"]["patternType"])
        for a in acls
        if a["resource"]["type"] == "group"
    ]
    assert groups == [("tiering-stream", "prefix")]  # with rebuild-views' tiering-stream-rebuild


def test_complaints_may_read_where_tiering_stands_and_nothing_else_of_it():
    """The filing wait (hvc.complaints.frontier): tiering's group offsets and its inputs'
    offsets, which complaints' defaults name as tiering's own."""
    from hvc.complaints.settings import ComplaintsSettings
    from hvc.tiering.pipeline import INPUTS

    settings = ComplaintsSettings()
    assert sorted(settings.tiering_inputs) == sorted(INPUTS)
    assert settings.tiering_group == "tiering-stream"  # its pipeline's group
    users = {d["metadata"]["name"]: d for d in render("prod") if d["kind"] == "KafkaUser"}
    acls = users["hvc-complaints"]["spec"]["authorization"]["acls"]
    describe_only = {
        (a["resource"]["type"], a["resource"]["name"])
        for a in acls
        if a["operations"] == ["Describe"]
    }
    assert describe_only == {("topic", t) for t in INPUTS} | {("group", "tiering-stream")}


def test_only_the_gateway_takes_traffic_from_outside_the_namespace():
    for doc in (d for d in render("prod") if d["kind"] == "NetworkPolicy"):
        for rule in doc["spec"].get("ingress", []):
            open_to_all = "from" not in rule
            if open_to_all:
                assert doc["spec"]["podSelector"] == {
                    "matchLabels": {"app.kubernetes.io/name": "gateway"}
                }


def test_the_crd_check_rejects_unknown_fields_and_wrong_types():
    schemas = crd_schemas()
    kafka = next(d for d in render("prod") if d["kind"] == "Kafka")
    typo = {
        **kafka,
        "spec": {**kafka["spec"], "kafka": {**kafka["spec"]["kafka"], "listenerz": []}},
    }
    with pytest.raises(jsonschema.ValidationError, match="listenerz"):
        jsonschema.validate(typo, schemas[(kafka["apiVersion"], "Kafka")])
    topic = next(d for d in render("prod") if d["kind"] == "KafkaTopic")
    wrong = {**topic, "spec": {**topic["spec"], "partitions": "many"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, schemas[(topic["apiVersion"], "KafkaTopic")])


def test_versioned_data_reaches_the_services_as_configmaps():
    docs = render("prod")
    maps = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs if d["kind"] == "ConfigMap"}
    assert "2025.1.json" in maps["hvc-tiering-rulesets"]["data"]
    assert "2025.1.json" in maps["hvc-warnings-rules"]["data"]
    warnings = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "hvc-warnings"
    )["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in warnings["containers"][0]["env"]}
    assert env["HVC_WARNINGS_RULES_FILE"] == "/etc/hvc/warnings-rules/2025.1.json"
    volume = next(v for v in warnings["volumes"] if v["name"] == "hvc-warnings-rules")
    assert volume["configMap"]["name"].startswith("hvc-warnings-rules")
    # The complaints service: its policies and the operator's working calendar, each mounted.
    assert {"2025.1.json", "2027.1.json"} <= set(maps["hvc-complaints-policies"]["data"])
    assert "cn-mainland.json" in maps["hvc-working-calendar"]["data"]
    assert "2026.1.json" in maps["hvc-complaints-roster"]["data"]
    complaints = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "hvc-complaints"
    )["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in complaints["containers"][0]["env"]}
    assert env["HVC_COMPLAINTS_WORKING_CALENDAR_FILE"] == (
        "/etc/hvc/working-calendar/cn-mainland.json"
    )
    assert env["HVC_COMPLAINTS_ROSTER_FILE"] == "/etc/hvc/complaints-roster/2026.1.json"
    mounts = {m["name"]: m["mountPath"] for m in complaints["containers"][0]["volumeMounts"]}
    assert mounts["hvc-working-calendar"] == "/etc/hvc/working-calendar"


def test_monitoring_reaches_the_metrics_port_only_and_the_api_only_the_gateway():
    """Issue 20, item 10: the monitoring namespace reached every service's whole API."""
    policy = next(
        d
        for d in render("prod")
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "hvc-services"
    )
    rules = policy["spec"]["ingress"]
    by_source = {
        json.dumps(r["from"], sort_keys=True): sorted(p["port"] for p in r["ports"]) for r in rules
    }
    gateway = json.dumps([{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}])
    monitoring = [v for k, v in by_source.items() if "monitoring" in k]
    assert by_source[json.dumps(json.loads(gateway), sort_keys=True)] == [8080]
    assert monitoring == [[9090]]
    for d in render("prod"):
        if d["kind"] != "Deployment":
            continue
        (c,) = d["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in c["env"]}
        assert env["HVC_SERVICE_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "hvc-service-key"
        assert env["HVC_METRICS_PORT"]["value"] == "9090"
        assert d["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9090"
