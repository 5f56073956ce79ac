# syntax=docker/dockerfile:1.7
# The TaskStore operator image: python -m taskstore_operator as a non-root user.
#   docker build -t ghcr.io/tealagents/taskstore-operator:0.1.0 .
# The tag is the chart's appVersion (charts/taskstore-operator/Chart.yaml), which is the
# chart's default image.tag; tests/delivery/test_image.py keeps the three in step.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Stage 1: the library, the operator and every dependency as wheels, at the pinned versions.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONSTRAINT=/src/deploy/image/constraints.txt
WORKDIR /src
COPY deploy/image/constraints.txt deploy/image/constraints.txt
COPY pyproject.toml README.md ./
COPY library/ library/
COPY operator/ operator/
RUN pip wheel --wheel-dir /wheels . ./operator

# Stage 2: the runtime, installed from those wheels only (no index, no compiler).
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="taskstore-operator" \
      org.opencontainers.image.description="The TaskStore operator for Teal Agents" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A named user for tools that look the uid up; the chart runs the pod as 10001 too.
RUN groupadd --gid 10001 taskstore \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin taskstore
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "teal-taskstore-operator==0.1.0"
USER 10001:10001
# 8080: Prometheus metrics (--metrics-port); 8081: kopf's GET /healthz (--health-port).
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "taskstore_operator"]
