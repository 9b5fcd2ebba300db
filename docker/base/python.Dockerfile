# Stand-in for python:3.11-slim where no registry can be reached: bookworm's own Python
# is 3.11. Only what the service image's build and run stages use: python, venv, CA roots.
ARG DEBIAN_BASE=drone-delivery/debian-base:bookworm
FROM ${DEBIAN_BASE}

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3 /usr/local/bin/python

LABEL org.opencontainers.image.title="python-base" \
      org.opencontainers.image.description="Debian bookworm python3 (3.11), a local stand-in for python:3.11-slim"

CMD ["python3"]
