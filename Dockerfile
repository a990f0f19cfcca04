# One image for every Orbin process: `orbin api`, `orbin worker`, the dashboard, `orbin migrate`.
# The Prefect server runs from Prefect's own image (compose.yaml) or its Helm chart (k8s).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ORBIN_HOME=/data \
    ORBIN_API_HOST=0.0.0.0 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

WORKDIR /app
COPY pyproject.toml README.md prefect.yaml ./
COPY telemetry ./telemetry
COPY tenancy ./tenancy
COPY orbin_flows ./orbin_flows
COPY ingest_api ./ingest_api
COPY streamlit_app ./streamlit_app
COPY blocks ./blocks
COPY deployments ./deployments
COPY orbin_cli ./orbin_cli
RUN pip install . && useradd --create-home --uid 10001 orbin && mkdir -p /data \
    && chown orbin /data
USER orbin
EXPOSE 8000 8501 9100
# Exec form: SIGTERM reaches orbin itself, which drains (ORBIN_*_SHUTDOWN_SECONDS).
ENTRYPOINT ["orbin"]
CMD ["api"]
