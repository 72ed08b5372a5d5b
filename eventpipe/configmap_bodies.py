"""kube-eventer's `custom_body_configmap`: webhook bodies kept in ConfigMaps, read through the
API at startup.

Parsing a `--sink` flag (eventpipe.config.kube_eventer) only records which ConfigMap holds the
body (`SinkFlag.configmap`); the config layer reads nothing but files. `eventpipe run` calls
`read_configmap_bodies` before it applies the flags, so a missing or unreadable ConfigMap stops
startup with a usage error naming the flag, as any other bad flag does.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from eventpipe.config.kube_eventer import SinkFlag, SinkFlagError, with_configmap_body
from eventpipe.kube.client import connect


async def read_configmap_bodies(flags: Sequence[SinkFlag], kubeconfig: str | None
                                ) -> list[SinkFlag]:
    """Fill in webhook bodies kept in ConfigMaps (kube-eventer's custom_body_configmap)."""
    if all(flag.configmap is None for flag in flags):
        return list(flags)
    out = []
    try:
        api = await connect(kubeconfig)
    except Exception as exc:  # kubeconfig/in-cluster problems come as several types
        raise SinkFlagError(f"custom_body_configmap: cannot reach the API server to read the "
                            f"ConfigMap ({type(exc).__name__}: {exc}); give the body as "
                            "custom_body_file=PATH instead") from None
    async with api:
        core = client.CoreV1Api(api)
        for flag in flags:
            if flag.configmap is not None:
                namespace, name = flag.configmap
                try:
                    found = await core.read_namespaced_config_map(name, namespace)
                except ApiException as exc:
                    raise SinkFlagError(f"{flag.label}: cannot read ConfigMap {namespace}/"
                                        f"{name}: {exc.status} {exc.reason}") from None
                except (aiohttp.ClientError, OSError) as exc:
                    raise SinkFlagError(f"{flag.label}: cannot read ConfigMap {namespace}/"
                                        f"{name}: {type(exc).__name__}: {exc}") from None
                flag = with_configmap_body(flag, (found.data or {}).get("content"))
            out.append(flag)
    return out
