# One image recipe for the five services:
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=ingestion -t drone-delivery/ingestion .
# BASE_IMAGE is any Python 3.11 image with python, venv and CA roots; where no registry can
# be reached, docker/base/python.Dockerfile builds a stand-in from Debian's packages.
# Extra CA certificates (a proxy's, a corporate one): put *.crt or *.pem files in
# docker/certs/ (git-ignored) before building; they are trusted by the build stage only.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The Dockerfile itself keeps the COPY valid when docker/certs/ does not exist.
COPY docker/service.Dockerfile docker/cert[s] /tmp/certs/
RUN mkdir -p /opt/certs \
    && cat /etc/ssl/certs/ca-certificates.crt >/opt/certs/bundle.pem \
    && for f in /tmp/certs/*.crt /tmp/certs/*.pem; do \
           if [ -f "$f" ]; then cat "$f" >>/opt/certs/bundle.pem; echo "trusting $f"; fi; \
       done \
    && rm -rf /tmp/certs
ENV SSL_CERT_FILE=/opt/certs/bundle.pem \
    PIP_CERT=/opt/certs/bundle.pem \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# uv pinned as in the Makefile; it stays in this stage.
ARG UV_VERSION=0.13.8
RUN python -m venv /opt/uv && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}"

# Dependencies first, from the lock alone: this layer survives code changes.
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python "$(command -v python)"

# The service's package and the shared ones it imports (tests/unit/test_imports.py keeps
# it so); no other service's code.
ARG SERVICE
ARG SHARED_PACKAGES="chassis contracts"
COPY services/ /src/services/
RUN test -n "${SERVICE}" || { echo "build arg SERVICE is required" >&2; exit 1; } \
    && mkdir /app \
    && for p in ${SHARED_PACKAGES} ${SERVICE}; do cp -r "/src/services/$p" /app/; done \
    && find /app -name __pycache__ -prune -exec rm -rf {} + \
    && test -f "/app/${SERVICE}/__main__.py" \
    && /opt/venv/bin/python -m compileall -q /app \
    && PYTHONPATH=/app /opt/venv/bin/python -c "import ${SERVICE}.main"

FROM ${BASE_IMAGE} AS runtime

# Everything up to the venv is the same for the five services: built once, shared by all.
# No home directory to write to: the root file system may be read-only; /tmp is the
# only place the service writes.
RUN useradd --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv

ARG BASE_IMAGE
ARG SERVICE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="drone-delivery-${SERVICE}" \
      org.opencontainers.image.description="Drone delivery reference app: the ${SERVICE} service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY --from=build /app /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    SERVICE=${SERVICE} \
    HOST=0.0.0.0 \
    PORT=8080

USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# Python's own HTTP client: the image carries no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/ready' % os.environ.get('PORT', '8080'), timeout=2)"]
# The shell only expands $SERVICE, then steps aside: python runs as PID 1 and gets SIGTERM.
CMD ["sh", "-c", "exec python -m \"$SERVICE\""]
