//! otlp-enricher's native core: bytes only. It walks OTLP protobuf, splices attributes into
//! spans, writes OTLP/JSON and runs the scrubbers. It knows no vocabulary, price or policy:
//! those arrive as plain tables from Python (``otlp_enricher/dataplane.py``) at start.

pub mod json;
mod memo;
pub mod redact;
pub mod scan;
pub mod splice;
pub mod wire;

#[cfg(feature = "python")]
mod py;
