# Rectifier images, one Dockerfile, four targets:
#   serve      (default, the last stage) CPU inference service: onnxruntime + FastAPI, no torch
#   serve-gpu  the same with onnxruntime-gpu and the CUDA/cuDNN runtime from pip wheels
#   train      torch, torchvision and the training package, for `rectifier train` / `export`
#   serve-ray  `serve` plus Ray Serve, the image of a Ray cluster (KubeRay, deploy/ray/)
#
#   docker build -t rectifier:serve .                      # or: docker compose build
#   docker build --target serve-gpu -t rectifier:serve-gpu .
#   docker build --target serve-ray -t rectifier:serve-ray .
#   docker build --target train -t rectifier:train .
#
# Build with BuildKit (the default since Docker 23; `DOCKER_BUILDKIT=1` on older clients) so
# a target builds only the stages it needs; the classic builder would build all of them.
# Every image is debian:bookworm-slim + Debian's Python 3.11 + a virtual environment in
# /opt/venv, dependencies installed before the code is copied, running as a non-root user.

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------
# The runtime every image shares: Debian's python3 and an unprivileged user.
FROM ${BASE_IMAGE} AS python
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 rectifier \
    && useradd --system --uid 10001 --gid rectifier --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin rectifier

# ---------------------------------------------------------------------------------------
# Builder: venv tooling and CA certificates; nothing from here but /opt/venv is kept.
FROM python AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# Builds behind a TLS-intercepting proxy: its CA goes in docker/ca-certificates/*.crt.
COPY docker/ca-certificates/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120
RUN python3 -m venv /opt/venv \
    && pip install --quiet "setuptools>=68" wheel
WORKDIR /src

# Each target's requirements, read from pyproject.toml. The install layers below depend on
# these files' contents only, so an edit elsewhere in pyproject.toml keeps them cached.
FROM python AS requirements
COPY docker/requirements.py pyproject.toml /src/
RUN cd /src \
    && python3 requirements.py pyproject.toml serve dicom > serve.txt \
    && python3 requirements.py pyproject.toml gpu dicom > gpu.txt \
    && echo "onnxruntime-gpu[cuda,cudnn]" >> gpu.txt \
    && python3 requirements.py pyproject.toml train dicom > train.txt \
    && python3 requirements.py pyproject.toml ray dicom > ray.txt

# ---------------------------------------------------------------------------------------
# What both serving images share: the port, the healthcheck and the command.
FROM python AS serving
ENV RECTIFIER_MODELS_DIR=/models
WORKDIR /tmp
EXPOSE 8000
# /readyz answers 200 once every model is loaded and warmed up, 503 while draining.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
ENTRYPOINT ["rectifier"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# ---------------------------------------------------------------------------------------
# serve-gpu: onnxruntime-gpu with its CUDA and cuDNN wheels (no CUDA base image needed).
FROM builder AS serve-gpu-venv
COPY --from=requirements /src/gpu.txt /tmp/requirements.txt
RUN pip install --quiet -r /tmp/requirements.txt
COPY pyproject.toml README.md ./
COPY model/__init__.py model/card.py model/cpus.py model/layout.py model/preprocess.py model/
COPY model/cli.py model/cli_flags.py model/cli_root.py model/log_setup.py model/
COPY model/decoding/ model/decoding/
COPY model/cam.py model/cam_file.py model/cam_cli.py model/files.py model/trust.py model/
COPY service/ service/
RUN pip install --quiet --no-deps --no-build-isolation . \
    && pip uninstall --quiet --yes setuptools wheel \
    && find /opt/venv/lib -path '*/site-packages/nvidia/*' -name 'lib*.so*' -printf '%h\n' \
        | sort -u > /opt/venv/nvidia-libs.conf

FROM serving AS serve-gpu
COPY --from=serve-gpu-venv /opt/venv /opt/venv
# The CUDA/cuDNN libraries live inside the nvidia-* wheels; let the loader find them.
RUN cp /opt/venv/nvidia-libs.conf /etc/ld.so.conf.d/zz-nvidia-wheels.conf && ldconfig
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    RECTIFIER_DEVICE=auto
USER rectifier

# ---------------------------------------------------------------------------------------
# train: torch and torchvision (PyPI's default build, with CUDA). For a CPU-only image pass
# --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu where that is reachable.
FROM builder AS train-venv
ARG TORCH_INDEX_URL=""
COPY --from=requirements /src/train.txt /tmp/requirements.txt
RUN pip install --quiet ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        -r /tmp/requirements.txt
COPY pyproject.toml README.md ./
COPY model/ model/
COPY training/ training/
RUN pip install --quiet --no-deps --no-build-isolation . \
    && pip uninstall --quiet --yes setuptools wheel

FROM python AS train
COPY --from=train-venv /opt/venv /opt/venv
# Any --user works (compose passes the host's uid so ./runs and ./models stay yours):
# caches go to /tmp, never to a home folder.
ENV HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    MPLBACKEND=Agg
USER rectifier
WORKDIR /work
ENTRYPOINT ["rectifier"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------
# serve (default): CPU onnxruntime, FastAPI, the service and the torch-free model modules.
FROM builder AS serve-venv
COPY --from=requirements /src/serve.txt /tmp/requirements.txt
RUN pip install --quiet -r /tmp/requirements.txt
COPY pyproject.toml README.md ./
COPY model/__init__.py model/card.py model/cpus.py model/layout.py model/preprocess.py model/
COPY model/cli.py model/cli_flags.py model/cli_root.py model/log_setup.py model/
COPY model/decoding/ model/decoding/
COPY model/cam.py model/cam_file.py model/cam_cli.py model/files.py model/trust.py model/
COPY service/ service/
RUN pip install --quiet --no-deps --no-build-isolation . \
    && pip uninstall --quiet --yes setuptools wheel

# ---------------------------------------------------------------------------------------
# serve-ray: the CPU service plus Ray Serve, for a Ray cluster on Kubernetes (KubeRay runs
# `ray start` in it; deploy/ray/rayservice.yaml). Not needed by `serve` or `serve-gpu`.
# The serve image's venv (service, torch-free model modules) plus what the ray extra adds.
FROM serve-venv AS serve-ray-venv
COPY --from=requirements /src/ray.txt /tmp/requirements.txt
RUN pip install --quiet -r /tmp/requirements.txt

FROM python AS serve-ray
# KubeRay's probes call wget; Ray keeps its session files under /tmp/ray.
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/*
COPY --from=serve-ray-venv /opt/venv /opt/venv
ENV HOME=/tmp \
    RECTIFIER_MODELS_DIR=/models \
    RECTIFIER_DEVICE=cpu
WORKDIR /tmp
USER rectifier

# serve, the default: the last stage.
FROM serving AS serve
COPY --from=serve-venv /opt/venv /opt/venv
ENV RECTIFIER_DEVICE=cpu
USER rectifier
