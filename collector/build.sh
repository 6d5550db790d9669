#!/usr/bin/env bash
# Build the OpenTelemetry Collector described by collector/manifest.yaml with the Collector
# Builder (ocb) and the Go toolchain, through the Go module proxy.
#
# The binary is cached outside the repository, keyed by the manifest's sha256:
#   ${OTLP_ENRICHER_CACHE:-$HOME/.cache/otlp-enricher}/otelcol/<sha256>/otelcol-enricher
# If that binary exists, nothing is built. The builder itself is installed into
# <cache>/bin when missing. All build output goes to stderr; the last stdout line is the
# binary path, so callers can do: bin="$(bash collector/build.sh | tail -n 1)".
#
# Environment: OTLP_ENRICHER_CACHE (cache root), OCB_VERSION (default v0.159.0),
# GO (go command, default "go"). GOPATH/GOCACHE keep Go's defaults (outside the repo).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="${here}/manifest.yaml"
cache="${OTLP_ENRICHER_CACHE:-${HOME}/.cache/otlp-enricher}"
ocb_version="${OCB_VERSION:-v0.159.0}"
go="${GO:-go}"

log() { printf 'collector/build.sh: %s\n' "$*" >&2; }

digest="$(sha256sum "${manifest}" | cut -d' ' -f1)"
dir="${cache}/otelcol/${digest}"
binary="${dir}/otelcol-enricher"

if [[ -x "${binary}" ]]; then
  log "cached: ${binary}"
  printf '%s\n' "${binary}"
  exit 0
fi

if ! command -v "${go}" >/dev/null 2>&1; then
  log "the Go toolchain ('${go}') is not on PATH; install Go >= 1.25 to build the Collector"
  exit 3
fi

mkdir -p "${dir}" "${cache}/bin"

# One build at a time per manifest (parallel test sessions share the cache).
exec 9>"${dir}/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [[ -x "${binary}" ]]; then
  log "built by a concurrent run: ${binary}"
  printf '%s\n' "${binary}"
  exit 0
fi

builder="${cache}/bin/builder"
if [[ ! -x "${builder}" ]]; then
  log "installing the Collector Builder ${ocb_version} into ${cache}/bin"
  GOBIN="${cache}/bin" "${go}" install "go.opentelemetry.io/collector/cmd/builder@${ocb_version}" >&2
fi

# The builder writes sources and the binary to dist.output_path; point it into the cache.
work="${dir}/build"
rm -rf "${work}"
mkdir -p "${work}"
sed -e "s#^\(  output_path:\).*#\1 ${work}#" "${manifest}" >"${dir}/manifest.yaml"
if ! grep -q "^  output_path: ${work}\$" "${dir}/manifest.yaml"; then
  log "manifest.yaml must contain an indented 'output_path:' line under dist"
  exit 2
fi

log "building the Collector into ${work} (first build takes several minutes)"
start="$(date +%s)"
GOFLAGS="${GOFLAGS:-} -mod=mod" "${builder}" --config "${dir}/manifest.yaml" >&2
log "built in $(( $(date +%s) - start )) s"

# Publish atomically so a half-written binary is never taken for a cached one.
cp "${work}/otelcol-enricher" "${binary}.tmp"
mv -f "${binary}.tmp" "${binary}"
rm -rf "${work}"
printf '%s\n' "${binary}"
