# otlp-enricher image. Pipeline position: Collector ──OTLP :4317/:4318──▶ [otlp-enricher]
#   ──▶ /metrics :9464 (Prometheus), Loki push, Tempo OTLP.
# Build: docker build -t otlp-enricher .   Run: docker run -v ./config.yaml:/etc/otlp-enricher/config.yaml …
# The native data plane (native/, Rust) is compiled in a build stage; the runtime image holds
# only the wheel's contents, no toolchain.
FROM rust:1-slim-bookworm AS rust
FROM python:3.11-slim-bookworm AS build
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV PATH=/usr/local/cargo/bin:$PATH RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /src/
COPY native /src/native
COPY otlp_enricher /src/otlp_enricher
RUN pip wheel --no-deps --wheel-dir /wheels /src

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Give freed memory back to the OS promptly (large protobuf batches come and go).
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072

RUN groupadd --system --gid 10001 otlp-enricher \
 && useradd --system --uid 10001 --gid otlp-enricher --no-create-home \
      --home-dir /var/lib/otlp-enricher --shell /usr/sbin/nologin otlp-enricher \
 && mkdir -p /var/lib/otlp-enricher /etc/otlp-enricher \
 && chown otlp-enricher:otlp-enricher /var/lib/otlp-enricher

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

COPY deploy/otlp-enricher/config.yaml /etc/otlp-enricher/config.yaml

USER 10001:10001
WORKDIR /var/lib/otlp-enricher
VOLUME ["/var/lib/otlp-enricher"]
EXPOSE 4317 4318 9464

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["otlp-enricher"]
CMD ["serve", "--config", "/etc/otlp-enricher/config.yaml"]
