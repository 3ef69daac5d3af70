# GPU grading worker: CUDA build of torch, transformers, xgrammar, bitsandbytes. Weights are mounted, not baked.
FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /venv
ENV PATH=/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services services
COPY shared shared
COPY migrations migrations
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir -e '.[model,gpu]'
# The same uid as the web image: both write the shared /data volume.
RUN useradd --uid 10001 --create-home yuejuan && mkdir -p /data && chown yuejuan /data
USER yuejuan
ENV YUEJUAN_DATA_DIR=/data HF_HUB_OFFLINE=1
CMD ["yuejuan", "worker", "--queues", "gpu"]
