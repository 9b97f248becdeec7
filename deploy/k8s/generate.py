"""Generates deploy/k8s/base and the per-service parts of overlays/prod from one table.

The topic registry (hvc.common.topics) gives the KafkaTopics and every service's ACLs; each
stream service's pipeline gives its inputs. `python deploy/k8s/generate.py` writes the files;
`--check` fails when the committed files differ (make k8s-check, and the test suite).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from hvc.common.service import stream_group
from hvc.common.topics import CLOCK, CONTRACT_TOPICS, TOPICS, spec

ROOT = Path(__file__).resolve().parent
BASE = ROOT / "base"
PROD = ROOT / "overlays" / "prod"
IMAGE = "registry.example.com/hvc/{name}"
PORT = 8080
METRICS_PORT = 9090  # Prometheus only (HVC_METRICS_PORT): the NetworkPolicy admits it alone
# The key the gateway signs its calls to the services with (hvc.common.calls): a Secret the
# overlay provides (dev: generated with a fixed development value; prod: the operators').
SERVICE_KEY_SECRET = "hvc-service-key"  # noqa: S105 - a Secret's name, not its value
STREAM = ("tiering", "warnings", "benefits", "complaints")
SERVICES = (*STREAM, "gateway")
LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "hvc"}
# Requests and limits: the gateway is CPU-bound on requests, stream services on events.
RESOURCES = {
    "requests": {"cpu": "250m", "memory": "384Mi"},
    "limits": {"cpu": "1", "memory": "768Mi"},
}
CONFIG_FILES: dict[str, list[tuple[str, Path, str, str]]] = {
    # service: [(ConfigMap, folder of the versioned data it loads at start-up, the setting
    # that points at it, and the setting's value inside the mount /etc/hvc/<ConfigMap>)]
    "tiering": [
        (
            "hvc-tiering-rulesets",
            Path("services/tiering/src/hvc/tiering/rulesets"),
            "HVC_TIERING_RULESET_DIR",
            "",
        )
    ],
    "warnings": [
        (
            "hvc-warnings-rules",
            Path("services/warnings/src/hvc/warnings/rulesets"),
            "HVC_WARNINGS_RULES_FILE",
            "2025.1.json",
        )
    ],
    "benefits": [
        (
            "hvc-benefits-catalogue",
            Path("services/benefits/src/hvc/benefits/catalogue"),
            "HVC_BENEFITS_CATALOGUE_FILE",
            "2025.1.json",
        )
    ],
    "complaints": [
        (
            "hvc-complaints-policies",
            Path("services/complaints/src/hvc/complaints/policies"),
            "HVC_COMPLAINTS_POLICY_DIR",
            "",
        ),
        # Who escalations reach (hvc.complaints.domain.roster): the operator's staff ids.
        (
            "hvc-complaints-roster",
            Path("services/complaints/src/hvc/complaints/rosters"),
            "HVC_COMPLAINTS_ROSTER_FILE",
            "2026.1.json",
        ),
        # The operator's working calendar (hvc.common.workcal), replaced by its own.
        (
            "hvc-working-calendar",
            Path("libs/common/src/hvc/common/calendars"),
            "HVC_COMPLAINTS_WORKING_CALENDAR_FILE",
            "cn-mainland.json",
        ),
    ],
}


# Services on the stream engine (hvc.common.streams): one consumer group, stream_group(service),
# its inputs listed in pipeline.py, its state in changelog topics named after that group.
ENGINE = STREAM
# Services that follow another's progress (hvc.complaints.frontier): they read its consumer
# group's committed offsets and the offsets of its inputs, and nothing else of them.
WATCHES = {"complaints": "tiering"}
# Settings a live deployment needs that differ from the local defaults.
EXTRA_ENV = {
    "warnings": {"HVC_WARNINGS_CLOCK": "wall"},
    "complaints": {"HVC_COMPLAINTS_CLOCK": "wall"},
    "benefits": {"HVC_BENEFITS_CLOCK": "wall"},
}


def inputs(service: str) -> list[str]:
    if service not in STREAM:
        return []
    return sorted(importlib.import_module(f"hvc.{service}.pipeline").INPUTS)


def group(service: str, topic: str) -> str:
    return stream_group(service)


def outputs(service: str) -> list[str]:
    return sorted(t.name for t in CONTRACT_TOPICS if service in t.producers)


def labels(name: str) -> dict[str, str]:
    return {LABEL: name, **PART_OF}


def deployment(name: str) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "HVC_HTTP_HOST", "value": "0.0.0.0"},
        {"name": "HVC_HTTP_PORT", "value": str(PORT)},
        {"name": "HVC_DATA_DIR", "value": "/var/lib/hvc"},
        {"name": "MONGO_DATABASE", "value": f"hvc_{name}"},
        {"name": "KAFKA_SASL_USERNAME", "value": f"hvc-{name}"},
        # The gateway signs its calls to the services with it; they take no other call.
        {
            "name": "HVC_SERVICE_KEY",
            "valueFrom": {"secretKeyRef": {"name": SERVICE_KEY_SECRET, "key": "key"}},
        },
        {"name": "HVC_METRICS_PORT", "value": str(METRICS_PORT)},
        *({"name": k, "value": v} for k, v in EXTRA_ENV.get(name, {}).items()),
    ]
    mounts = [
        {"name": "data", "mountPath": "/var/lib/hvc"},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, writable /tmp
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    for cm, _, setting, value in CONFIG_FILES.get(name, []):
        mount = f"/etc/hvc/{cm.removeprefix('hvc-')}"
        env.append({"name": setting, "value": f"{mount}/{value}" if value else mount})
        mounts.append({"name": cm, "mountPath": mount, "readOnly": True})
        volumes.append({"name": cm, "configMap": {"name": cm}})
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": name,
        "image": IMAGE.format(name=name),
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": "http", "containerPort": PORT},
            {"name": "metrics", "containerPort": METRICS_PORT},
        ],
        "envFrom": [{"configMapRef": {"name": "hvc-env"}}],
        "env": env,
        "resources": RESOURCES,
        "livenessProbe": {**probe, "failureThreshold": 3, "timeoutSeconds": 3},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        },
        # Stream recovery (rebalance, table recovery) may take minutes after a restart.
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"hvc-{name}", "labels": labels(name)},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {LABEL: name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": labels(name),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"hvc-{name}", "labels": labels(name)},
        "spec": {
            "selector": {LABEL: name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def pdb(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": f"hvc-{name}", "labels": labels(name)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {LABEL: name}}},
    }


def scaler(name: str) -> dict[str, Any]:
    if name not in STREAM:
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": f"hvc-{name}", "labels": labels(name)},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": f"hvc-{name}",
                },
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        }
    topics = inputs(name)
    # More consumers than partitions would sit idle: the busiest input bounds the replicas.
    most = max(t.partitions for t in CONTRACT_TOPICS if t.name in topics)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": f"hvc-{name}", "labels": labels(name)},
        "spec": {
            "scaleTargetRef": {"name": f"hvc-{name}"},
            "minReplicaCount": 2,
            "maxReplicaCount": most,
            "cooldownPeriod": 300,
            "triggers": lag_triggers(name, "hvc-kafka-kafka-bootstrap:9092", None),
        },
    }


def lag_triggers(name: str, bootstrap: str, auth: str | None) -> list[dict[str, Any]]:
    """One consumer-group lag trigger per input topic of the service."""
    out = []
    for topic in inputs(name):
        trigger: dict[str, Any] = {
            "type": "kafka",
            "metadata": {
                "bootstrapServers": bootstrap,
                "consumerGroup": group(name, topic),
                "topic": topic,
                "lagThreshold": "1000",
                "offsetResetPolicy": "earliest",
            },
        }
        if auth:
            trigger["authenticationRef"] = {"name": auth}
        out.append(trigger)
    return out


def prod_scaler_patch(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": f"hvc-{name}"},
        "spec": {
            "triggers": lag_triggers(name, "hvc-kafka-kafka-bootstrap:9093", "hvc-keda-kafka")
        },
    }


def kafka_topic(spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {
            "name": spec.name.replace("_", "-"),
            "labels": {"strimzi.io/cluster": "hvc-kafka", **PART_OF},
        },
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": spec.replicas,
            "config": spec.config(),
        },
    }


def acl(resource: dict[str, Any], *operations: str) -> dict[str, Any]:
    return {"resource": resource, "operations": list(operations)}


def kafka_user(name: str) -> dict[str, Any]:
    def topic(t: str) -> dict[str, Any]:
        return {"type": "topic", "name": t, "patternType": "literal"}

    acls = [acl(topic(t), "Read", "Describe") for t in inputs(name)]
    writes = sorted({*outputs(name), *(f"{t}.dlq" for t in inputs(name))})
    acls += [acl(topic(t), "Write", "Describe") for t in writes]
    if name not in ENGINE:
        # A service's own topics and group, named after it (none on the engine uses them).
        acls.append(
            acl(
                {"type": "topic", "name": f"{name}-", "patternType": "prefix"},
                "Read",
                "Write",
                "Create",
                "Describe",
            )
        )
        acls.append(acl({"type": "group", "name": name, "patternType": "literal"}, "Read"))
    if name in WATCHES:
        other = WATCHES[name]
        acls += [acl(topic(t), "Describe") for t in inputs(other) if t not in inputs(name)]
        acls.append(
            acl({"type": "group", "name": group(other, ""), "patternType": "literal"}, "Describe")
        )
    if name in ENGINE:
        # The engine's group (and `rebuild-views`' own, <group>-rebuild), and its state's
        # changelog topics (changelog__<group>--...), which it creates; it reads its inputs'
        # configuration to validate them.
        engine_group = stream_group(name)
        acls.append(acl({"type": "group", "name": engine_group, "patternType": "prefix"}, "Read"))
        acls.append(
            acl(
                {"type": "topic", "name": f"changelog__{engine_group}--", "patternType": "prefix"},
                "Read",
                "Write",
                "Create",
                "Describe",
                "DescribeConfigs",
            )
        )
        acls += [acl(topic(t), "DescribeConfigs") for t in inputs(name)]
        if name in spec(CLOCK).producers:
            # the clock it publishes (an output) and reads
            acls.append(acl(topic(CLOCK), "Read", "DescribeConfigs"))
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {
            "name": f"hvc-{name}",
            "labels": {"strimzi.io/cluster": "hvc-kafka", **labels(name)},
        },
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


MONITORING = {
    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
}


def network_policies() -> list[dict[str, Any]]:
    dns = {
        "to": [{"namespaceSelector": {}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    stores = {
        "to": [
            {"podSelector": {"matchLabels": {"strimzi.io/cluster": "hvc-kafka"}}},
            {"podSelector": {"matchLabels": {"app": "hvc-mongodb-svc"}}},
        ]
    }
    out = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "hvc-default-deny", "labels": PART_OF},
            "spec": {"podSelector": {"matchLabels": PART_OF}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "hvc-services", "labels": PART_OF},
            "spec": {
                "podSelector": {
                    "matchExpressions": [{"key": LABEL, "operator": "In", "values": list(SERVICES)}]
                },
                "policyTypes": ["Ingress", "Egress"],
                # The gateway calls the services' API; Prometheus scrapes their metrics port,
                # and reaches nothing else of them.
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {LABEL: "gateway"}}}],
                        "ports": [{"protocol": "TCP", "port": PORT}],
                    },
                    MONITORING,
                ],
                "egress": [stores, dns],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "hvc-gateway-ingress", "labels": PART_OF},
            "spec": {
                "podSelector": {"matchLabels": {LABEL: "gateway"}},
                "policyTypes": ["Ingress", "Egress"],
                # The only pods that take traffic from outside the namespace.
                "ingress": [{"ports": [{"protocol": "TCP", "port": PORT}]}, MONITORING],
                "egress": [
                    {
                        "to": [
                            {
                                "podSelector": {
                                    "matchExpressions": [
                                        {"key": LABEL, "operator": "In", "values": list(STREAM)}
                                    ]
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": PORT}],
                    }
                ],
            },
        },
    ]
    return out


def prod_credentials_patch(name: str) -> dict[str, Any]:
    """Production: SCRAM password from the KafkaUser's secret, Mongo URI from the operator's."""
    env = [
        {
            "name": "KAFKA_SASL_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": f"hvc-{name}", "key": "password"}},
        },
        {
            "name": "MONGO_URI",
            "valueFrom": {
                "secretKeyRef": {
                    "name": f"hvc-mongodb-hvc-{name}-hvc-{name}",
                    "key": "connectionString.standard",
                }
            },
        },
    ]
    if name == "gateway":
        env.append(
            {
                "name": "HVC_GATEWAY_JWKS_URL",
                "valueFrom": {"secretKeyRef": {"name": "hvc-gateway-auth", "key": "jwks_url"}},
            }
        )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"hvc-{name}"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "env": env,
                            "volumeMounts": [
                                {
                                    "name": "kafka-ca",
                                    "mountPath": "/etc/hvc/kafka-ca",
                                    "readOnly": True,
                                },
                                {
                                    "name": "mongo-ca",
                                    "mountPath": "/etc/hvc/mongo-ca",
                                    "readOnly": True,
                                },
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "kafka-ca", "secret": {"secretName": "hvc-kafka-cluster-ca-cert"}},
                        {"name": "mongo-ca", "configMap": {"name": "hvc-mongodb-ca"}},
                    ],
                }
            }
        },
    }


def render() -> dict[Path, str]:
    files: dict[Path, str] = {}

    def put(path: Path, docs: list[dict[str, Any]]) -> None:
        header = "# Generated by deploy/k8s/generate.py: edit the generator, not this file.\n"
        files[path] = header + yaml.safe_dump_all(docs, sort_keys=False, width=100)

    resources = []
    for name in SERVICES:
        put(
            BASE / "services" / f"{name}.yaml",
            [deployment(name), service(name), pdb(name), scaler(name)],
        )
        resources.append(f"services/{name}.yaml")
    put(BASE / "kafka-topics.yaml", [kafka_topic(t) for t in TOPICS])
    put(BASE / "kafka-users.yaml", [kafka_user(n) for n in SERVICES])
    put(BASE / "network-policies.yaml", network_policies())
    resources += ["kafka-topics.yaml", "kafka-users.yaml", "network-policies.yaml"]
    generators = []
    root = Path(__file__).resolve().parents[2]
    configs = {cm: folder for entries in CONFIG_FILES.values() for cm, folder, _, _ in entries}
    for cm, folder in configs.items():
        at = cm.removeprefix("hvc-")
        for f in sorted((root / folder).glob("*.json")):
            files[BASE / "config" / at / f.name] = f.read_text()
        generators.append(
            {
                "name": cm,
                "files": [f"config/{at}/{f.name}" for f in sorted((root / folder).glob("*.json"))],
            }
        )
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": PART_OF, "includeSelectors": False}],
        "resources": resources,
        "configMapGenerator": generators,
    }
    put(BASE / "kustomization.yaml", [kustomization])
    put(PROD / "credentials.yaml", [prod_credentials_patch(n) for n in SERVICES])
    put(PROD / "scalers.yaml", [prod_scaler_patch(n) for n in STREAM])
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when files are stale")
    args = parser.parse_args()
    files = render()
    if args.check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        extra = [p for p in (BASE / "config").rglob("*") if p.is_file() and p not in files]
        for p in stale + extra:
            sys.stderr.write(f"stale: {p.relative_to(ROOT)}\n")
        if stale or extra:
            sys.stderr.write("deploy/k8s is stale: run `make k8s`\n")
            return 1
        sys.stdout.write(f"deploy/k8s: {len(files)} generated files are current\n")
        return 0
    shutil.rmtree(BASE / "config", ignore_errors=True)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    sys.stdout.write(json.dumps({"written": len(files)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
