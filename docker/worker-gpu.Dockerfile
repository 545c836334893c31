# syntax=docker/dockerfile:1.7
# The GPU worker: NVIDIA's TensorRT image (CUDA, TensorRT and its Python wheel) + `.[gpu]` (pycuda).
# Build from the repository root:
#   docker build -f docker/worker-gpu.Dockerfile -t stream-tagger:gpu .
# TensorRT plans are tied to the GPU and the TensorRT version of this base image (DESIGN §3): when
# the tag below changes, every plan is rebuilt on first use (or by the trainer's build-engines Job).
ARG TENSORRT_IMAGE=nvcr.io/nvidia/tensorrt:25.01-py3

FROM ${TENSORRT_IMAGE}
ARG ENGINES_DIR=engines
ARG UID=10001
# `video` exposes the driver's NVDEC/NVENC libraries (libnvcuvid) that FFmpeg's cuda hwaccel opens.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    STREAM_TAGGER_ENGINE_DIR=/opt/stream-tagger/engines \
    STREAM_TAGGER_BACKEND=tensorrt \
    STREAM_TAGGER_DECODER=nvdec
WORKDIR /src
COPY docker/constraints /tmp/constraints
COPY pyproject.toml README.md ./
COPY stream_tagger ./stream_tagger
# The base image's python3 already has TensorRT's wheel, so `tensorrt>=10.0` resolves to it.
RUN python3 -m pip install --constraint /tmp/constraints/gpu.txt ".[gpu]" \
    && rm -rf /src /tmp/constraints
RUN groupadd --gid "${UID}" tagger \
    && useradd --uid "${UID}" --gid "${UID}" --no-create-home --home-dir /tmp --shell /usr/sbin/nologin tagger
COPY --chown=${UID}:${UID} ${ENGINES_DIR} /opt/stream-tagger/engines
USER ${UID}:${UID}
WORKDIR /tmp
EXPOSE 9108
ENTRYPOINT ["stream-tagger"]
CMD ["run"]
