#!/usr/bin/env bash
# Regenerate otlp_enricher/_proto/loki_push_pb2.py from proto/loki_push.proto.
# grpcio-tools is a development tool only (pip install 'grpcio-tools>=1.85,<2'); the generated
# module needs nothing but the protobuf runtime, which is a runtime dependency already.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
out=otlp_enricher/_proto
mkdir -p "$out"
"$python" -m grpc_tools.protoc --proto_path=proto --python_out="$out" --pyi_out="$out" proto/loki_push.proto
# The generated stub leaves Mapping unparameterised, which mypy --strict reports; say so once here.
sed -i '1i # mypy: disable-error-code="type-arg"' "$out/loki_push_pb2.pyi"
[ -f "$out/__init__.py" ] || printf '"""Generated protobuf modules (see proto/generate.sh); not edited by hand."""\n' > "$out/__init__.py"
"$python" -c "from otlp_enricher._proto import loki_push_pb2 as m; m.PushRequest(streams=[m.StreamAdapter(labels='{a=\"b\"}')]).SerializeToString()"
echo "generated $out/loki_push_pb2.py"
