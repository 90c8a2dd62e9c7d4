# syntax=docker/dockerfile:1
# canary-analyzer service image: `docker build -t canary-analyzer:0.1.0 .`
# Stage 1 builds the wheel and a virtualenv with every dependency (all from wheels: no
# compiler needed); stage 2 is a clean slim Python with only that virtualenv, run as a
# numeric non-root user. Kubernetes probes /healthz and /readyz, so there is no HEALTHCHECK.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rules/ rules/
COPY analyzer/ analyzer/
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/canary-analyzer \
 && /opt/canary-analyzer/bin/pip install /wheels/canary_analyzer-*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="canary-analyzer" \
      org.opencontainers.image.description="Unattended, metric-gated Istio data-plane upgrades"
ENV PATH=/opt/canary-analyzer/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 canary \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin canary
COPY --from=builder /opt/canary-analyzer /opt/canary-analyzer
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["canary-analyzer"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
