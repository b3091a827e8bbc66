# The aggregator as a container: `aggregator serve` on port 8080, the database on a volume,
# the config from a mounted folder.
#   docker build -t aggregator .
#   docker run -p 8080:8080 -v aggregator-data:/data -v "$PWD/config:/app/config:ro" aggregator
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    AGGREGATOR_CONFIG=/app/config/aggregator.toml \
    AGGREGATOR_DATABASE=/data/aggregator.db \
    AGGREGATOR_OUTPUT_DIR=/data/public

WORKDIR /app
COPY pyproject.toml README.md ./
COPY aggregator ./aggregator
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin aggregator \
    && mkdir -p /data \
    && chown aggregator /data
COPY config ./config

USER aggregator
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["aggregator", "serve", "--host", "0.0.0.0", "--port", "8080"]
