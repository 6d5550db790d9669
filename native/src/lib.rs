//! otlp-enricher's native core: bytes only. It walks OTLP protobuf, splices attributes into
//! spans, writes OTLP/JSON and runs the scrubbers. It knows no vocabulary, price or policy:
//! those arrive as plain tables from Python (``otlp_enricher/dataplane.py``) at start.

pub mod anyvalue;
pub mod json;
mod jsonvalue;
pub mod jsonwrite;
mod memo;
pub mod redact;
mod relax;
pub mod scan;
pub mod splice;
pub mod split;
mod validate;
pub mod wire;

#[cfg(feature = "python")]
mod py;
