# syntax=docker/dockerfile:1.7
# The trainer: `.[train]` with the CPU build of torch 2.13.0; runs `stream-tagger-train ...` (the
# Kubernetes Job/CronJob rebuild engines into a shared volume mounted at /opt/stream-tagger/engines).
# Build from the repository root:
#   docker build -f docker/trainer.Dockerfile -t stream-tagger-trainer:latest .
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY docker/constraints /tmp/constraints
COPY pyproject.toml README.md ./
COPY stream_tagger ./stream_tagger
COPY trainer ./trainer
COPY video_world ./video_world
# torch's CPU wheels live on its own index; everything else comes from PyPI.
RUN /opt/venv/bin/pip install --constraint /tmp/constraints/trainer.txt \
        --extra-index-url https://download.pytorch.org/whl/cpu ".[train]"

FROM ${PYTHON_IMAGE}
ARG UID=10001
# torch maps and unmaps every large activation with glibc's defaults (MEASURED.md): raise the thresholds.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184
RUN groupadd --gid "${UID}" tagger \
    && useradd --uid "${UID}" --gid "${UID}" --no-create-home --home-dir /tmp --shell /usr/sbin/nologin tagger
COPY --from=build /opt/venv /opt/venv
USER ${UID}:${UID}
WORKDIR /tmp
ENTRYPOINT ["stream-tagger-train"]
CMD ["--help"]
