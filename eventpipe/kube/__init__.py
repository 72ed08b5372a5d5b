"""The Kubernetes client connection every layer that talks to the API server shares (the watch,
enrichment, leader election, the kube-eventer ConfigMap read): `client.connect` builds the
kubernetes-asyncio ApiClient from a kubeconfig or the pod's service account, and `lazy` keeps
importing that client cheap. Nothing here may import kubernetes_asyncio at package import time:
`eventpipe/__init__.py` installs `lazy` before anything else loads the client."""
