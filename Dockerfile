# One image for the three services, the console, the example gateway and the CLI (compose.yaml runs it).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY services ./services
COPY keyledger ./keyledger
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data --create-home keyledger

# No secrets in the image: the master key and NATS passwords come from the environment.
USER keyledger
WORKDIR /data
ENV KEYLEDGER_DATA_DIR=/data
CMD ["keyledger", "--help"]
