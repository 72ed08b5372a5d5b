"""Kind names as kubectl users type them: `po`, `pods`, `Pod` and `pod` all mean `Pod`.

The spool stores the involved object's kind exactly as the API server wrote it (CamelCase).
Short names and plurals of the built-in kinds people look at most are mapped here; any other
word (a custom resource's kind) is passed through and matched case-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "Pod": ("po", "pods"),
    "Node": ("no", "nodes"),
    "Deployment": ("deploy", "deployments"),
    "ReplicaSet": ("rs", "replicasets"),
    "ReplicationController": ("rc", "replicationcontrollers"),
    "StatefulSet": ("sts", "statefulsets"),
    "DaemonSet": ("ds", "daemonsets"),
    "Job": ("jobs",),
    "CronJob": ("cj", "cronjobs"),
    "Service": ("svc", "services"),
    "Endpoints": ("ep",),
    "Namespace": ("ns", "namespaces"),
    "PersistentVolumeClaim": ("pvc", "persistentvolumeclaims"),
    "PersistentVolume": ("pv", "persistentvolumes"),
    "ConfigMap": ("cm", "configmaps"),
    "Secret": ("secrets",),
    "ServiceAccount": ("sa", "serviceaccounts"),
    "Ingress": ("ing", "ingresses"),
    "HorizontalPodAutoscaler": ("hpa", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("pdb", "poddisruptionbudgets"),
    "Event": ("ev", "events"),
})
# Every spelling, lower-cased, to its kind (read-only, like _KINDS).
_WORDS: Mapping[str, str] = MappingProxyType({
    word.lower(): kind for kind, aliases in _KINDS.items() for word in (kind, *aliases)})


def canonical_kind(word: str) -> str:
    """`po` → `Pod`; an unknown kind is returned as given (matched case-insensitively)."""
    return _WORDS.get(word.lower(), word)


def parse_for(target: str) -> tuple[str, str]:
    """`pod/NAME` (kubectl events --for) → (`Pod`, `NAME`); ValueError if not KIND/NAME."""
    kind, sep, name = target.partition("/")
    if not sep or not kind or not name or "/" in name:
        raise ValueError(f"expected KIND/NAME such as pod/web-0, got {target!r}")
    return canonical_kind(kind), name
