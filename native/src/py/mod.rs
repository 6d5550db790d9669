//! The Python module ``otlp_enricher._native``: a small typed surface (``_native.pyi``) over the
//! byte-level work. Errors cross as ``DecodeError`` (a ``ValueError``) and ``ScrubFailed``;
//! nothing panics across the boundary. The heavy passes run without the GIL.
//!
//! ``scanner`` turns a request's candidate spans into Python objects (content scrubbed on the
//! way), ``splicer`` writes the enrichment back into the bytes; the rest is small enough to live here.

mod scanner;
mod splicer;

use std::collections::HashSet;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::json::request_to_json;
use crate::redact::{pattern_problem, Redactor as CoreRedactor, ScrubberSpec, Validator};
use crate::splice::ContentRules;
use crate::split::split;
use crate::wire::DecodeError as CoreDecodeError;
use scanner::{Event, Scan, Scanner, Span, Status};
use splicer::Splicer;

create_exception!(
    _native,
    DecodeError,
    PyValueError,
    "The bytes are not a well-formed OTLP traces request."
);
create_exception!(
    _native,
    ScrubFailed,
    PyException,
    "A scrubber failed; the text must be dropped, not sent."
);

fn decode_error(error: CoreDecodeError) -> PyErr {
    DecodeError::new_err(error.0)
}

fn byte_set(items: Vec<String>) -> HashSet<Vec<u8>> {
    items.into_iter().map(String::into_bytes).collect()
}

fn byte_list(items: Vec<String>) -> Vec<Vec<u8>> {
    items.into_iter().map(String::into_bytes).collect()
}

/// The content rules (``CONTENT_*`` in ``otlp_enricher/semconv/keys.py``) as bytes.
fn content_rules(
    keys: Vec<String>,
    prefixes: Vec<String>,
    event_names: Vec<String>,
    event_prefixes: Vec<String>,
) -> ContentRules {
    ContentRules {
        keys: byte_set(keys),
        prefixes: byte_list(prefixes),
        event_names: byte_set(event_names),
        event_prefixes: byte_list(event_prefixes),
    }
}

/// The configured scrubbers, with a memory of recent results bounded by ``memo_bytes``.
#[pyclass(frozen, module = "otlp_enricher._native")]
pub struct Redactor {
    core: CoreRedactor,
}

#[pymethods]
impl Redactor {
    /// ``scrubbers``: (name, pattern, validator ("", "luhn", "ip", "phone"), marker), in order.
    #[new]
    fn new(scrubbers: Vec<(String, String, String, String)>, memo_bytes: usize) -> PyResult<Self> {
        let mut specs = Vec::with_capacity(scrubbers.len());
        for (name, pattern, validator, marker) in scrubbers {
            let validator = Validator::parse(&validator).map_err(PyValueError::new_err)?;
            specs.push(ScrubberSpec {
                name,
                pattern,
                validator,
                marker,
            });
        }
        let core = CoreRedactor::new(specs, memo_bytes).map_err(PyValueError::new_err)?;
        Ok(Redactor { core })
    }

    /// ``text`` scrubbed, and the matches per scrubber name; raises ``ScrubFailed``.
    fn scrub<'py>(&self, py: Python<'py>, text: &str) -> PyResult<(String, Bound<'py, PyDict>)> {
        let core = &self.core;
        let result = py
            .detach(|| core.scrub(text))
            .map_err(|failed| ScrubFailed::new_err(failed.0))?;
        let counts = PyDict::new(py);
        for &(index, count) in &result.1 {
            counts.set_item(core.name(index), count)?;
        }
        Ok((result.0.clone(), counts))
    }
}

/// The request as one OTLP/JSON line (the Collector file exporter's form).
#[pyfunction]
fn to_json<'py>(py: Python<'py>, request: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = request.as_bytes();
    let out = py.detach(|| request_to_json(bytes)).map_err(decode_error)?;
    Ok(PyBytes::new(py, &out))
}

/// ``request`` cut into requests of at most ``max_spans`` spans and about ``max_bytes`` bytes,
/// with the span count of each.
#[pyfunction(name = "split")]
fn py_split<'py>(
    py: Python<'py>,
    request: &Bound<'py, PyBytes>,
    max_spans: usize,
    max_bytes: usize,
) -> PyResult<Vec<(Bound<'py, PyBytes>, u32)>> {
    let bytes = request.as_bytes();
    let parts = py
        .detach(|| split(bytes, max_spans, max_bytes))
        .map_err(decode_error)?;
    Ok(parts
        .into_iter()
        .map(|(part, spans)| (PyBytes::new(py, &part), spans))
        .collect())
}

/// Why ``pattern`` cannot be a scrubber, or ``None``.
#[pyfunction(name = "pattern_problem")]
fn py_pattern_problem(pattern: &str) -> Option<String> {
    pattern_problem(pattern)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Scanner>()?;
    m.add_class::<Scan>()?;
    m.add_class::<Span>()?;
    m.add_class::<Status>()?;
    m.add_class::<Event>()?;
    m.add_class::<Redactor>()?;
    m.add_class::<Splicer>()?;
    m.add_function(wrap_pyfunction!(to_json, m)?)?;
    m.add_function(wrap_pyfunction!(py_pattern_problem, m)?)?;
    m.add_function(wrap_pyfunction!(py_split, m)?)?;
    m.add("DecodeError", m.py().get_type::<DecodeError>())?;
    m.add("ScrubFailed", m.py().get_type::<ScrubFailed>())?;
    Ok(())
}
