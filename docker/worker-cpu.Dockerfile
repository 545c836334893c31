# syntax=docker/dockerfile:1.7
# The CPU worker: python:3.11-slim + the worker's base dependencies only (no torch, no trainer).
# Build from the repository root:
#   docker build -f docker/worker-cpu.Dockerfile -t stream-tagger:cpu .
# Engines: baked from ENGINES_DIR (default: the committed engines/), or mount a volume over
# /opt/stream-tagger/engines (the Kubernetes manifests mount the trainer's shared volume there).
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY docker/constraints/worker.txt /tmp/constraints.txt
COPY pyproject.toml README.md ./
COPY stream_tagger ./stream_tagger
RUN /opt/venv/bin/pip install --constraint /tmp/constraints.txt .

FROM ${PYTHON_IMAGE}
ARG ENGINES_DIR=engines
ARG UID=10001
# Bytecode is compiled at install time; a read-only root filesystem cannot take new .pyc files anyway.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    STREAM_TAGGER_ENGINE_DIR=/opt/stream-tagger/engines \
    STREAM_TAGGER_BACKEND=onnxruntime \
    STREAM_TAGGER_DECODER=pyav
RUN groupadd --gid "${UID}" tagger \
    && useradd --uid "${UID}" --gid "${UID}" --no-create-home --home-dir /tmp --shell /usr/sbin/nologin tagger
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root ${ENGINES_DIR} /opt/stream-tagger/engines
USER ${UID}:${UID}
WORKDIR /tmp
EXPOSE 9108
ENTRYPOINT ["stream-tagger"]
CMD ["run"]
