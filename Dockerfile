# syntax=docker/dockerfile:1.4
# eventpipe image: `docker build -t eventpipe .`
#
# Runs as uid 10001 (numeric, so Kubernetes' runAsNonRoot can verify it); the spool lives on the
# /var/lib/eventpipe volume (the chart mounts its PVC there); the config is read from
# /etc/eventpipe/config.yaml (the chart mounts its ConfigMap there). resmo's form works as args:
#   docker run eventpipe -conf=/data/config.yaml
# charts/eventpipe and tests/test_dockerfile.py keep these paths, the port and the uid in step.

FROM python:3.11-slim AS build
WORKDIR /src
# A venv, so the runtime stage copies one directory and no build tooling.
RUN python -m venv /opt/eventpipe
COPY pyproject.toml README.md ./
COPY eventpipe ./eventpipe
RUN /opt/eventpipe/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 eventpipe \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /var/lib/eventpipe --shell /usr/sbin/nologin eventpipe \
 && mkdir -p /var/lib/eventpipe /etc/eventpipe \
 && chown 10001:10001 /var/lib/eventpipe \
 && ln -s /opt/eventpipe/bin/eventpipe /kube-eventer \
 && ln -s /opt/eventpipe/bin/eventpipe /kubernetes-event-exporter
COPY --from=build /opt/eventpipe /opt/eventpipe
# A default config (everything to stdout), so a bare `docker run` works; mounts replace it.
COPY <<'EOF' /etc/eventpipe/config.yaml
spool:
  path: /var/lib/eventpipe/spool.db
route:
  routes:
    - match:
        - receiver: stdout
receivers:
  - name: stdout
    stdout: {}
EOF
# EVENTPIPE_SPOOL: the spool of a config without `spool.path` and of bare --sink flags.
ENV PATH=/opt/eventpipe/bin:$PATH \
    EVENTPIPE_SPOOL=/var/lib/eventpipe/spool.db \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /
VOLUME /var/lib/eventpipe
# /metrics, /healthz, /readyz
EXPOSE 2112
ENTRYPOINT ["eventpipe"]
CMD ["run", "--config", "/etc/eventpipe/config.yaml"]
