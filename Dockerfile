FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LBPANEL_VAR_DIR=/var/lib/lbpanel
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN LBPANEL_SECRET_KEY=build python manage.py collectstatic --noinput -v 0 \
    && useradd --system --home /var/lib/lbpanel lbpanel && mkdir -p /var/lib/lbpanel && chown lbpanel /var/lib/lbpanel
USER lbpanel
EXPOSE 8000 5060/udp 5060/tcp
CMD ["gunicorn", "lbpanel.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
