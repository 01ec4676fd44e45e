"""Schema subsets for the deploy/ recipes. No package installed here ships the official
Compose specification or Kubernetes schemas, so these check the structure the recipes rely
on (with `additionalProperties` left open), not every rule of the official schemas."""

from __future__ import annotations

from typing import Any

_ENV = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}

COMPOSE: dict[str, Any] = {
    "type": "object",
    "required": ["services", "networks"],
    "properties": {
        "name": {"type": "string"},
        "services": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "image": {"type": "string"},
                    "build": {"type": "object", "required": ["context"]},
                    "environment": _ENV,
                    "sysctls": _ENV,
                    "networks": {
                        "oneOf": [
                            {"type": "array", "items": {"type": "string"}},
                            {
                                "type": "object",
                                "additionalProperties": {
                                    "type": ["object", "null"],
                                    "properties": {
                                        "ipv4_address": {"type": "string", "format": "ipv4"}
                                    },
                                },
                            },
                        ]
                    },
                    "depends_on": {"type": ["object", "array"]},
                    "volumes": {"type": "array", "items": {"type": "string"}},
                    "cap_drop": {"type": "array", "items": {"type": "string"}},
                    "read_only": {"type": "boolean"},
                    "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
                },
            },
        },
        "networks": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "driver": {"type": "string"},
                    "ipam": {
                        "type": "object",
                        "properties": {
                            "config": {
                                "type": "array",
                                "items": {"type": "object", "required": ["subnet"]},
                            }
                        },
                    },
                },
            },
        },
        "volumes": {"type": "object"},
    },
}

_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_PROBE = {
    "type": "object",
    "properties": {
        "exec": {
            "type": "object",
            "required": ["command"],
            "properties": {"command": {"type": "array", "items": {"type": "string"}}},
        },
        "periodSeconds": {"type": "integer", "minimum": 1},
        "timeoutSeconds": {"type": "integer", "minimum": 1},
        "initialDelaySeconds": {"type": "integer", "minimum": 0},
    },
}
_ENV_VAR = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
        "valueFrom": {
            "type": "object",
            "properties": {
                "secretKeyRef": {
                    "type": "object",
                    "required": ["name", "key"],
                    "properties": {"name": {"type": "string"}, "key": {"type": "string"}},
                }
            },
        },
    },
    "not": {"required": ["value", "valueFrom"]},
}
_CONTAINER = {
    "type": "object",
    "required": ["name", "image"],
    "properties": {
        "name": {"type": "string"},
        "image": {"type": "string"},
        "args": {"type": "array", "items": {"type": "string"}},
        "env": {"type": "array", "items": _ENV_VAR},
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["containerPort"],
                "properties": {
                    "containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "name": {"type": "string", "maxLength": 15},
                    "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                },
            },
        },
        "readinessProbe": _PROBE,
        "livenessProbe": _PROBE,
    },
}
DEPLOYMENT: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "apps/v1"},
        "kind": {"const": "Deployment"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "template"],
            "properties": {
                "replicas": {"type": "integer", "minimum": 0},
                "selector": {"type": "object", "required": ["matchLabels"]},
                "template": {
                    "type": "object",
                    "required": ["metadata", "spec"],
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["containers"],
                            "properties": {
                                "containers": {"type": "array", "items": _CONTAINER},
                            },
                        }
                    },
                },
            },
        },
    },
}
SERVICE: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "v1"},
        "kind": {"const": "Service"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "ports"],
            "properties": {
                "ports": {
                    "type": "array",
                    "items": {"type": "object", "required": ["port"]},
                }
            },
        },
    },
}
SECRET: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": {"const": "v1"},
        "kind": {"const": "Secret"},
        "metadata": _METADATA,
        "stringData": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
KUBERNETES = {"Deployment": DEPLOYMENT, "Service": SERVICE, "Secret": SECRET}
