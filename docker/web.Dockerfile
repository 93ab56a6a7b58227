# syntax=docker/dockerfile:1
# The dashboard image: Flask under gunicorn, plus the one-shot `panelpaint db upgrade` job.
# No torch here: the web side imports panelpaint only, and leaving PyTorch out keeps the image
# a few hundred MB instead of several GB.
#
# Build from the repository root:  docker build -f docker/web.Dockerfile -t panelpaint-web .
# (docker/compose.yaml does this for you.)
#
# The base is pinned by version. For byte-for-byte reproducible builds also pin the digest,
# e.g. `FROM python:3.11.14-slim-bookworm@sha256:<digest>` (`docker buildx imagetools inspect`
# prints it), and let a bot such as Renovate or Dependabot bump both together.

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when the list changes, not on
# every edit of the code. The list is pyproject's dependencies minus torch (kept in step by
# tests/test_docker.py).
COPY docker/requirements-web.txt /tmp/requirements-web.txt
RUN pip install -r /tmp/requirements-web.txt
# Then the project itself, without resolving dependencies again (that would pull torch). Only the
# packages the web side runs: the shared core, the dashboard and the Alembic migrations; models/
# and worker/ (and the weights) stay out of this image.
COPY pyproject.toml README.md ./
COPY panelpaint ./panelpaint
COPY cli ./cli
COPY web ./web
COPY migrations ./migrations
RUN pip install --no-deps . \
 && python -c "import importlib.util as u, sys; u.find_spec('torch') and sys.exit('torch must not be in the web image')"

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="panelpaint-web" \
      org.opencontainers.image.description="panelpaint review dashboard (gunicorn) and database migrations"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORAGE_ROOT=/data/storage \
    PANELPAINT_VAR_DIR=/data/var
# The same fixed UID/GID in the web and worker images: both write the shared storage volume.
# /data/storage is created here, owned by that user, so a fresh named volume mounted on it
# starts with the right owner.
RUN groupadd --system --gid 10001 panelpaint \
 && useradd --system --uid 10001 --gid panelpaint --home-dir /home/panelpaint --create-home \
        --shell /usr/sbin/nologin panelpaint \
 && mkdir -p /data/storage /data/var \
 && chown -R panelpaint:panelpaint /data
COPY --from=build /opt/venv /opt/venv
COPY --chmod=755 docker/healthcheck.py /usr/local/bin/panelpaint-healthcheck
# Numeric, so the runtime (and Kubernetes' runAsNonRoot) can tell it is not root.
USER 10001:10001
WORKDIR /home/panelpaint
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["panelpaint-healthcheck", "http://127.0.0.1:8000/readyz"]
# gunicorn is the production server (Flask's own is for development), sized as `panelpaint web`
# sizes it: threads in each process cover database waits and slow uploads, so a slow client never
# takes a whole process; about one process per core the web has to itself (docs/deploy.md).
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--access-logfile", "-", "web:create_app()"]
