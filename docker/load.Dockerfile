# The load generator: Locust with the scenarios of tests/load, for
# `docker compose --profile load up` and the chart's optional load component.
#   docker build -f docker/load.Dockerfile -t drone-delivery/load .
# LOCUST_VERSION follows uv.lock (tests/infra/test_release.py keeps them equal).
# Extra CA certificates: docker/certs/, as for docker/service.Dockerfile.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY docker/load.Dockerfile docker/cert[s] /tmp/certs/
ARG LOCUST_VERSION=2.47.0
# The CA bundle is needed by pip only: it is removed again with the build's certificates.
RUN cp /etc/ssl/certs/ca-certificates.crt /tmp/bundle.pem \
    && for f in /tmp/certs/*.crt /tmp/certs/*.pem; do \
           if [ -f "$f" ]; then cat "$f" >>/tmp/bundle.pem; fi; \
       done \
    && python -m venv /opt/venv \
    && PIP_CERT=/tmp/bundle.pem PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
       /opt/venv/bin/pip install --quiet "locust==${LOCUST_VERSION}" \
    && rm -rf /tmp/certs /tmp/bundle.pem \
    && useradd --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin locust \
    && mkdir -p /reports && chown 10001:10001 /reports

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="drone-delivery-load" \
      org.opencontainers.image.description="Drone delivery reference app: Locust with its load scenarios" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE_URL}"
COPY tests/load/locustfile.py /locust/locustfile.py

# Settings come as LOCUST_* variables (LOCUST_HOST, LOCUST_USERS, LOCUST_SPAWN_RATE,
# LOCUST_RUN_TIME, LOCUST_USER_CLASSES, ...), the per-user rate as RATE, and each run's
# HTML report goes to LOAD_REPORT_DIR (tests/load/locustfile.py).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    LOCUST_LOCUSTFILE=/locust/locustfile.py \
    LOAD_REPORT_DIR=/reports
USER 10001:10001
WORKDIR /tmp
EXPOSE 8089
CMD ["locust"]
