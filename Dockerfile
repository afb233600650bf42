# ClinicNet application image: the web (ASGI) process and the Celery worker.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CLINICNET_DATA_DIR=/srv/clinicnet/var

RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/clinicnet
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN python manage.py compilemessages --ignore=.venv -v0 \
    && SECRET_KEY=build-only python manage.py collectstatic --noinput -v0 \
    && useradd --system --home /srv/clinicnet clinicnet \
    && mkdir -p /srv/clinicnet/var && chown clinicnet /srv/clinicnet/var

USER clinicnet
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=5 CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000"]
