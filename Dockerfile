# The aggregator as a container: `aggregator serve` on port 8080, the database, the run lock and
# the static output on the /data volume, the config from a mounted folder (README, "Running it
# for real"). As root nothing runs: the process is user `aggregator` (uid 10001).
#   docker build -t aggregator .
#   docker run -d --init -p 8080:8080 -v aggregator-data:/data \
#     -v "$PWD/config:/app/config:ro" -e AGGREGATOR_ADMIN_TOKEN=... aggregator
# Cron mode in the same image (one cycle, then exit):
#   docker run --rm --no-healthcheck -v aggregator-data:/data \
#     -v "$PWD/config:/app/config:ro" aggregator aggregator run
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGGREGATOR_CONFIG=/app/config/aggregator.toml \
    AGGREGATOR_DATABASE=/data/aggregator.db \
    AGGREGATOR_OUTPUT_DIR=/data/public

WORKDIR /app
COPY pyproject.toml README.md ./
COPY aggregator ./aggregator
RUN pip install . \
    && rm -rf build aggregator.egg-info \
    && useradd --system --uid 10001 --no-create-home --home-dir /data \
       --shell /usr/sbin/nologin aggregator \
    && mkdir -p /data/public \
    && chown -R aggregator /data
# The shipped config, used when no folder is mounted on /app/config (read-only is fine: the
# process never writes there).
COPY config ./config

USER aggregator
# Everything the process writes: aggregator.db (+ -wal, -shm), aggregator.lock, public/
VOLUME ["/data"]
EXPOSE 8080
# `serve` finishes or abandons its in-flight fetches on SIGTERM, losing nothing.
STOPSIGNAL SIGTERM
# /healthz: the process answers, the database takes a write, the scheduler ticks (503 else).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["aggregator", "serve", "--host", "0.0.0.0", "--port", "8080"]
