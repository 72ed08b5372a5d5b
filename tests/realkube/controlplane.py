"""A real control plane on 127.0.0.1 for the tests in this folder: etcd, kube-apiserver (TLS from
a CA made here, RBAC,Node authorization, ServiceAccount issuer and keys, a 60 s event TTL, no
watch cache so a compacted resourceVersion gives the real 410), kube-controller-manager and
kube-scheduler, each with its own client certificate. Binaries come from `make kube`."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def kube_version() -> str:
    """The k8s.io/kubernetes release scripts/kube/go.mod pins."""
    for line in (REPO / "scripts" / "kube" / "go.mod").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "k8s.io/kubernetes":
            return parts[1]
    raise RuntimeError("scripts/kube/go.mod names no k8s.io/kubernetes version")


def binary_dir() -> Path:
    """Where scripts/install-kube.sh caches the binaries (same rule as the script)."""
    if cache := os.environ.get("EVENTPIPE_KUBE_CACHE"):
        return Path(cache)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eventpipe" / "kube" / kube_version()


def missing_binaries() -> list[str]:
    """Components not built yet (empty when the tier can run)."""
    return [name for name in COMPONENTS if not os.access(binary_dir() / name, os.X_OK)]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass
class Pki:
    """A CA and the certificates signed by it, as PEM files in `root`."""

    root: Path

    def __post_init__(self) -> None:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=eventpipe-test-ca", "-keyout", str(self.root / "ca.key"),
                 "-out", str(self.root / "ca.crt"))

    @property
    def ca(self) -> Path:
        """The CA certificate."""
        return self.root / "ca.crt"

    def issue(self, name: str, subject: str, *, server: bool = False) -> tuple[Path, Path]:
        """(cert, key) for `subject`; a server certificate is valid for 127.0.0.1/localhost."""
        key, csr, crt = (self.root / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
        ext = self.root / f"{name}.ext"
        usage = "serverAuth" if server else "clientAuth"
        lines = [f"extendedKeyUsage={usage}", "keyUsage=digitalSignature,keyEncipherment"]
        if server:
            lines.append("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes")
        ext.write_text("\n".join(lines) + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
                 "-keyout", str(key), "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca),
                 "-CAkey", str(self.root / "ca.key"), "-CAcreateserial", "-days", "2",
                 "-extfile", str(ext), "-out", str(crt))
        return crt, key


@dataclass
class ControlPlane:
    """The running processes and what a client needs to reach them."""

    root: Path
    api_port: int
    etcd_port: int
    pki: Pki
    admin_kubeconfig: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def server(self) -> str:
        """The API server's URL."""
        return f"https://127.0.0.1:{self.api_port}"

    def kubectl(self, *args: str, input_text: str | None = None) -> str:
        """Run kubectl as cluster admin; its stdout (fails the test on a non-zero exit)."""
        done = subprocess.run(
            [str(binary_dir() / "kubectl"), "--kubeconfig", str(self.admin_kubeconfig), *args],
            input=input_text.encode() if input_text else None, capture_output=True, timeout=60)
        if done.returncode:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.decode()}")
        return done.stdout.decode()

    def stop(self) -> None:
        """Terminate every component (controllers first, etcd last)."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path | None = None,
                     key: Path | None = None, *, token: str | None = None) -> Path:
    """A kubeconfig with one user: a client certificate, or else a bearer token."""
    user = (f'{{token: "{token}"}}' if token is not None
            else f'{{client-certificate: "{cert}", client-key: "{key}"}}')
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: test, cluster: {{server: "{server}", certificate-authority: "{ca}"}}}}]
users: [{{name: user, user: {user}}}]
contexts: [{{name: test, context: {{cluster: test, user: user}}}}]
current-context: test
""")
    return path


def _spawn(plane: ControlPlane, name: str, args: list[str]) -> None:
    log = (plane.root / f"{name}.log").open("ab")
    plane.procs[name] = subprocess.Popen([str(binary_dir() / name), *args],
                                         stdout=log, stderr=log)


def _wait_ready(plane: ControlPlane, within: float) -> None:
    context = ssl.create_default_context(cafile=str(plane.pki.ca))
    context.load_cert_chain(str(plane.root / "admin.crt"), str(plane.root / "admin.key"))
    deadline = time.monotonic() + within
    last = ""
    while time.monotonic() < deadline:
        for name, proc in plane.procs.items():
            if proc.poll() is not None:
                tail = (plane.root / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{plane.server}/readyz", context=context,
                                        timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"kube-apiserver not ready within {within}s: {last}")


def start(root: Path, *, within: float = 90.0) -> ControlPlane:
    """Start the control plane in `root`; returns once /readyz answers 200."""
    pki = Pki(root)
    api_port, etcd_port, peer_port = free_port(), free_port(), free_port()
    serving = pki.issue("apiserver", "/CN=kube-apiserver", server=True)
    admin = pki.issue("admin", "/O=system:masters/CN=admin")
    _openssl("genrsa", "-out", str(root / "sa.key"), "2048")
    _openssl("rsa", "-in", str(root / "sa.key"), "-pubout", "-out", str(root / "sa.pub"))
    server = f"https://127.0.0.1:{api_port}"
    plane = ControlPlane(root, api_port, etcd_port, pki,
                         write_kubeconfig(root / "admin.kubeconfig", server, pki.ca, *admin))
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    _spawn(plane, "etcd", [
        "--data-dir", str(root / "etcd"), "--listen-client-urls", etcd_url,
        "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
        "--unsafe-no-fsync", "--log-level", "warn"])
    _spawn(plane, "kube-apiserver", [
        "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1",
        "--advertise-address", "127.0.0.1", "--secure-port", str(api_port),
        "--tls-cert-file", str(serving[0]), "--tls-private-key-file", str(serving[1]),
        "--client-ca-file", str(pki.ca), "--authorization-mode", "Node,RBAC",
        "--service-account-issuer", "https://kubernetes.default.svc",
        "--service-account-key-file", str(root / "sa.pub"),
        "--service-account-signing-key-file", str(root / "sa.key"),
        "--service-cluster-ip-range", "10.0.0.0/24", "--event-ttl", "60s",
        # Loopback addresses need no endpoint reconciler (it refuses them).
        "--watch-cache=false", "--endpoint-reconciler-type", "none",
        "--cert-dir", str(root / "apiserver-certs")])
    for component, user in (("kube-controller-manager", "system:kube-controller-manager"),
                            ("kube-scheduler", "system:kube-scheduler")):
        config = write_kubeconfig(root / f"{component}.kubeconfig", server, pki.ca,
                                  *pki.issue(component, f"/CN={user}"))
        extra = (["--service-account-private-key-file", str(root / "sa.key"),
                  "--root-ca-file", str(pki.ca), "--use-service-account-credentials",
                  "--node-monitor-grace-period", "10s", "--node-monitor-period", "1s",
                  ]
                 if component == "kube-controller-manager"
                 # An unschedulable pod is tried again within ~40 s (the queue's 30 s flush
                 # plus this), not 5 min, so a FailedScheduling series grows inside a test.
                 else ["--pod-max-in-unschedulable-pods-duration", "10s"])
        _spawn(plane, component, ["--kubeconfig", str(config),
                                  "--authentication-kubeconfig", str(config),
                                  "--authorization-kubeconfig", str(config),
                                  "--leader-elect=false", "--secure-port", "0", *extra])
    try:
        _wait_ready(plane, within)
    except BaseException:
        plane.stop()
        raise
    return plane
