# The bot's runtime image: discord.py + ONNX Runtime + SQLite, no torch, no training code.
#
#   make model                                   # or: python -m training.tiny models/tiny
#   docker build -f bot.Dockerfile -t chatlabel-bot .            # --build-arg MODEL=models/tiny
#   docker run --env-file .env -v chatlabel-data:/data -p 9108:9108 chatlabel-bot
#
# The database lives in the /data volume and is migrated at start-up.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Runtime dependencies only (pyproject's [project.dependencies]); the train extra with torch
# is never installed.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY classifier ./classifier
COPY migrations ./migrations
RUN pip install . \
    && python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)"

# The model directory to serve (build it first; see the top of this file).
ARG MODEL=models/default
COPY ${MODEL} /app/model

RUN useradd --create-home --uid 10001 bot && mkdir -p /data && chown bot:bot /data
USER bot
WORKDIR /home/bot

ENV MODEL_DIR=/app/model \
    DATABASE_URL=sqlite+aiosqlite:////data/bot.db \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9108
VOLUME ["/data"]
EXPOSE 9108

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4).status != 200)"

CMD ["python", "-m", "bot"]
