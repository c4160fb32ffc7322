# syntax=docker/dockerfile:1
# Paydesk API / worker image.
#   docker build -t paydesk:$(git rev-parse --short HEAD) .
#   docker run --rm -p 8000:8000 -e PAYDESK_ENV=staging -e STRIPE_SECRET_KEY=… paydesk:…
# The same image runs every process: `serve` (default), `worker`, `migrate`,
# `events backfill …`; Kubernetes picks one with `args`. Secrets are never baked
# in: they arrive as environment variables (or NAME_FILE paths) at run time.

# Pin this by digest (python:3.11-slim-bookworm@sha256:…) in the release pipeline.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never
# The same uv as the Makefile, so the lock is read the same way.
RUN python -m pip install uv==0.13.8 \
 && python -m venv /opt/paydesk
WORKDIR /build
COPY pyproject.toml requirements.lock ./
# requirements.lock pins runtime and dev tools together. Ask the resolver which of
# the lock's pins the runtime needs (-c holds every version to the lock), copy
# exactly those entries, with the lock's own hashes, and install them with
# --require-hashes: no test or lint tools in the image, nothing unhashed.
RUN uv pip compile pyproject.toml --python-version 3.11 -c requirements.lock \
        --no-header --no-annotate -q -o runtime-names.txt \
 && awk 'NR == FNR { split($1, pin, "=="); keep[pin[1]] = 1; next } \
         /^[a-z0-9]/ { split($1, pin, "=="); on = (pin[1] in keep) } \
         on' runtime-names.txt requirements.lock > runtime.lock \
 && uv pip install -p /opt/paydesk/bin/python --require-hashes --compile-bytecode \
        -r runtime.lock
COPY README.md ./
COPY src ./src
# Every dependency is already in place from the lock; --no-deps keeps it that way.
RUN uv pip install -p /opt/paydesk/bin/python --no-deps --compile-bytecode . \
 && /opt/paydesk/bin/paydesk --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
# A fixed uid/gid that matches runAsUser/runAsGroup in deploy/k8s.
RUN groupadd --system --gid 10001 paydesk \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin paydesk
COPY --from=build /opt/paydesk /opt/paydesk
ENV PATH=/opt/paydesk/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PAYDESK_HOST=0.0.0.0 \
    PAYDESK_PORT=8000
# Nothing is written under the working directory: the root filesystem is
# read-only in Kubernetes, with an emptyDir on /tmp.
WORKDIR /app
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["paydesk"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
