# The service image used by docker-compose.yml: service.serve runs granian (SERVER=gunicorn
# for gunicorn) with REDIS_URL set, so no embedded Redis.
FROM python:3.12-slim

# HOST=0.0.0.0 serves the image on its own (then TRUSTED_PROXIES stays 0: no proxy, so no
# X-Forwarded-For is believed). docker-compose.yml sets HOST=127.0.0.1 and TRUSTED_PROXIES=1:
# there nginx, sharing the container's network, is the only way in (README, Deployment).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 PORT=8000 DATA_DIR=/data
WORKDIR /app

COPY pyproject.toml README.md openapi.yaml ./
COPY service ./service
# Editable, so the package finds openapi.yaml beside it, as in a checkout.
RUN pip install --no-cache-dir -e . && useradd --system --uid 10001 comments \
    && mkdir -p /data && chown comments /data
USER comments

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['PORT'], timeout=2)"
CMD ["python", "-m", "service.serve"]
