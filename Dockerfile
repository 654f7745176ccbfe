# syntax=docker/dockerfile:1

# The support chat server: the Python service and the web pages it serves.
# It expects an external PostgreSQL with pgvector in DATABASE_URL (docker-compose.yml
# brings one). Build:  docker build -t support-chat .
# Run:    docker run -p 8000:8000 -v chat-data:/data -e DATABASE_URL=postgresql://... support-chat

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
# build: a virtual environment holding the dependencies listed in pyproject.toml
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
COPY pyproject.toml ./

# Only the dependencies are installed here, read from pyproject.toml, so this layer is
# rebuilt when they change and not on every code change. The code itself runs from /app.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 # PyTorch's CPU build first (PyPI's default torch is a CUDA build of several GB); the
 # embedding model needs no GPU.
 && /opt/venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && /opt/venv/bin/pip install -r requirements.txt

# ---------------------------------------------------------------------------------------
# runtime: the slim image, the virtual environment, the code, an unprivileged user
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="support-chat" \
      org.opencontainers.image.description="Customer support chat: customers, supporters, a bot and suggested replies" \
      org.opencontainers.image.licenses="Apache-2.0"

# DATA_DIR holds the secrets generated on first start (mount a volume there and back it up);
# LOG_DIR the rotated log files. Both are settings and can be overridden.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TZ=Europe/Berlin \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data \
    LOG_DIR=/var/logs/chat

RUN groupadd --system --gid 10001 chat \
 && useradd --system --uid 10001 --gid chat --home-dir /home/chat --create-home \
            --shell /usr/sbin/nologin chat \
 && mkdir -p /data /var/logs/chat \
 && chown chat:chat /data /var/logs/chat

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend/ ./backend/
COPY frontend/ ./frontend/
# Compiled once here: the code is owned by root and read-only for the service user.
RUN python -m compileall -q backend

USER chat

EXPOSE 8000

# The slim image has no curl; Python's standard library does the check. /healthz answers
# once the server has started (database reachable, migrations applied, secrets loaded).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["python", "-m", "backend", "serve", "--host", "0.0.0.0", "--port", "8000"]
