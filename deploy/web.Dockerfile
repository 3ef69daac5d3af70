# Web app, migrations and the reports worker: no torch, no model.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services services
COPY shared shared
COPY migrations migrations
RUN pip install --no-cache-dir -e .
ENV YUEJUAN_DATA_DIR=/data
EXPOSE 8000
CMD ["yuejuan", "web", "--host", "0.0.0.0", "--port", "8000"]
