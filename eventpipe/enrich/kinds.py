"""The kinds enrichment keeps in metadata caches (list + watch), and where each is served.

A watched kind is listed and watched as `PartialObjectMetadata` (names, labels, annotations,
ownerReferences only). Pods are the exception: a Pod's node is in its spec, not its metadata, so
Pods are listed and watched as a server-side `Table` with `includeObject=Metadata`, whose rows
carry the same PartialObjectMetadata plus the printed columns, one of which is the node.
Every other kind (custom resources) keeps the cached, rate-limited GETs of eventpipe.enrich.
"""

from __future__ import annotations

from dataclasses import dataclass

METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
METADATA_OBJECT = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
NODE_COLUMN = "Node"
"""The Pod table's column that holds spec.nodeName ("<none>" until the pod is bound)."""


@dataclass(frozen=True, slots=True)
class WatchedKind:
    """One kind enrichment can list and watch."""

    kind: str
    api_version: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        """The API group ("" for core)."""
        return self.api_version.rpartition("/")[0]

    @property
    def as_table(self) -> bool:
        """True for Pods, which are read as a Table to learn their node."""
        return self.kind == "Pod"

    def collection_path(self, namespace: str) -> str:
        """The list/watch URL path, in `namespace` or across all ("")."""
        base = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def forbidden_reason(self, namespace: str) -> str:
        """What a 403 on this list/watch means and the rule that grants it."""
        resource = f"{self.plural}.{self.group}" if self.group else self.plural
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        return (f"cannot list/watch {resource} {where}: RBAC forbids it (need list/watch on "
                f"{resource} {where}); events about {self.kind}s go out without labels, "
                f"owner and node until it is granted")


KINDS: dict[str, WatchedKind] = {k.kind: k for k in (
    WatchedKind("Pod", "v1", "pods", True),
    WatchedKind("ReplicaSet", "apps/v1", "replicasets", True),
    WatchedKind("Deployment", "apps/v1", "deployments", True),
    WatchedKind("StatefulSet", "apps/v1", "statefulsets", True),
    WatchedKind("DaemonSet", "apps/v1", "daemonsets", True),
    WatchedKind("Job", "batch/v1", "jobs", True),
    WatchedKind("CronJob", "batch/v1", "cronjobs", True),
    WatchedKind("Node", "v1", "nodes", False),
)}
"""Every kind that can be watched (config `enrich.watchKinds` picks among them)."""

DEFAULT_KINDS = tuple(KINDS)


def group_of(api_version: str) -> str:
    """The group of an apiVersion ("" for "v1")."""
    return api_version.rpartition("/")[0]
