# Web app, migrations, the reports worker and beat: no torch, no transformers, no model.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services services
COPY shared shared
COPY migrations migrations
# Editable, so `yuejuan db upgrade` finds migrations/ beside the code. The `web` extra adds gunicorn.
RUN pip install --no-cache-dir -e '.[web]'
# The same uid as the worker image: both write the shared /data volume.
RUN useradd --uid 10001 --create-home yuejuan && mkdir -p /data && chown yuejuan /data
USER yuejuan
ENV YUEJUAN_DATA_DIR=/data
EXPOSE 8000
CMD ["yuejuan", "web", "--server", "gunicorn", "--host", "0.0.0.0", "--port", "8000"]
