# Samsyn's container image: the API (`samsyn serve`) and, with another command, the workers
# (`samsyn worker router`; the read side: `samsyn worker materializer sealer`). Build from the
# repository root:  docker build -t samsyn:1.0 .
# deploy/compose/compose.yaml and deploy/k8s/ use it; docs/operations.md explains the settings.
FROM python:3.11-slim

# No .pyc files in a read-only image; logs straight to the container runtime.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid/gid, so that Kubernetes' runAsNonRoot can check it without a passwd entry.
RUN groupadd --system --gid 10001 samsyn \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin samsyn

WORKDIR /app
# Dependencies first (a layer that changes only with pyproject.toml), then the code.
COPY pyproject.toml README.md ./
RUN mkdir -p broker consumers \
 && touch broker/__init__.py consumers/__init__.py \
 && pip install . \
 && pip uninstall -y samsyn \
 && rm -rf broker consumers build ./*.egg-info
# The code stays in /app, owned by root and read-only to the service user. It is installed in
# editable mode on purpose: schemas/ and the Alembic migrations are read from beside the
# package (broker/contracts.py, broker/infra/migrate.py), which a copy into site-packages would lose.
COPY broker ./broker
COPY consumers ./consumers
COPY schemas ./schemas
RUN pip install --no-deps -e . \
 && python -c "import broker.contracts as c; assert (c.SCHEMAS_DIR / 'envelope.json').is_file()"

USER 10001:10001
EXPOSE 8000
# The container runtime probes readiness (Kafka, OPA with a verified bundle, database);
# Kubernetes uses its own probes (deploy/k8s/), compose its own healthcheck.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["samsyn"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
