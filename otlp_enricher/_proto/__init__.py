"""Generated protobuf modules (see proto/generate.sh); not edited by hand."""
