# syntax=docker/dockerfile:1
# The worker image: Celery workers for the `render` queue (one process per GPU) and the `io`
# queue (CPU work), and Flower. CUDA build of PyTorch; the default weights ship inside the
# package (models/weights/default.safetensors), so a worker needs no download at start.
#
# Build from the repository root:  docker build -f docker/worker.Dockerfile -t panelpaint-worker .
#
# Why the `base` flavour of nvidia/cuda and not `cudnn-runtime`: PyTorch's Linux wheels bring
# their own CUDA runtime, cuBLAS and cuDNN as pip packages and load those, so a cudnn-runtime
# base would add about 2.5 GB of libraries nothing uses (and a second cuDNN to drift from the
# one torch was built with). `base` still sets the NVIDIA container variables and the CUDA
# compatibility libraries. Pin the digest as well for reproducible builds
# (`FROM nvidia/cuda:12.8.1-base-ubuntu22.04@sha256:<digest>`).
#
# The host needs an NVIDIA driver new enough for CUDA 12.8 (>= 570; older drivers of the 12.x
# family work through CUDA's minor-version compatibility) and the NVIDIA Container Toolkit.

# Ubuntu 22.04 ships Python 3.10; panelpaint needs 3.11, which the deadsnakes PPA provides.
# This stage only registers the PPA, so software-properties-common stays out of the final image.
# apt packages are not pinned to versions (hadolint DL3008): the PPA and Ubuntu's security pocket
# keep only their latest builds, so a pin would break the build at the next update; the base
# image tag and the Python packages are what is pinned.
FROM nvidia/cuda:12.8.1-base-ubuntu22.04 AS ppa
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && mkdir /apt \
 && cp -a /etc/apt/sources.list.d /etc/apt/trusted.gpg.d /apt/

FROM nvidia/cuda:12.8.1-base-ubuntu22.04 AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=ppa /apt/sources.list.d/ /etc/apt/sources.list.d/
COPY --from=ppa /apt/trusted.gpg.d/ /etc/apt/trusted.gpg.d/
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Same fixed UID/GID as the web image: both write the shared storage volume. /data/storage is
# created owned by that user so a fresh named volume mounted there starts with the right owner.
RUN groupadd --system --gid 10001 panelpaint \
 && useradd --system --uid 10001 --gid panelpaint --home-dir /home/panelpaint --create-home \
        --shell /usr/sbin/nologin panelpaint \
 && mkdir -p /data/storage /data/var \
 && chown -R panelpaint:panelpaint /data

FROM runtime AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11-venv \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# PyTorch first, from its CUDA 12.8 wheel index, pinned: the largest layer, and the one that
# changes least often. To build for CUDA 12.6 or 13.0 pass e.g.
# --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 (and pick the matching base).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
 && python -c "import torch, sys; torch.version.cuda or sys.exit('got a CPU-only torch build'); print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
# The other dependencies (pyproject's list minus torch, kept in step by tests/test_docker.py),
# then the project without re-resolving, so pip can never swap the CUDA torch for another build.
COPY docker/requirements-web.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY panelpaint ./panelpaint
COPY cli ./cli
COPY models ./models
COPY worker ./worker
COPY migrations ./migrations
# Fail the build, not the first page, when the default weights did not make it into the package.
RUN pip install --no-deps . \
 && python -c "import pathlib, sys, models; p = pathlib.Path(models.__file__).parent / 'weights' / 'default.safetensors'; p.is_file() or sys.exit(f'default weights missing from the package: {p}')"

FROM runtime
LABEL org.opencontainers.image.title="panelpaint-worker" \
      org.opencontainers.image.description="panelpaint Celery workers (CUDA PyTorch) and Flower"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORAGE_ROOT=/data/storage \
    PANELPAINT_VAR_DIR=/data/var
COPY --from=build /opt/venv /opt/venv
COPY --chmod=755 docker/healthcheck.py /usr/local/bin/panelpaint-healthcheck
# Numeric, so the runtime (and Kubernetes' runAsNonRoot) can tell it is not root.
USER 10001:10001
WORKDIR /home/panelpaint
# One process per GPU on the `render` queue; compose.yaml runs the same image with
# `--queues io` for CPU work and `panelpaint flower` for monitoring.
CMD ["panelpaint", "worker", "--queues", "render"]
