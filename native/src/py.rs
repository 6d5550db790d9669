//! The Python module ``otlp_enricher._native``: a small typed surface (``_native.pyi``) over the
//! byte-level work. Errors cross as ``DecodeError`` (a ``ValueError``) and ``ScrubFailed``;
//! nothing panics across the boundary. The heavy passes run without the GIL.

use std::collections::{HashMap, HashSet};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::json::request_to_json;
use crate::redact::{pattern_problem, Redactor as CoreRedactor, ScrubberSpec, Validator};
use crate::scan::{scan, AnyVal, Attr, ScanConfig};
use crate::splice::{
    attribute_field, split, Content, ContentRules, SpanEdit, Splicer as CoreSplicer, FAILED_MARKER,
};
use crate::wire::{put_bytes, put_tag, put_varint, DecodeError as CoreDecodeError};

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

/// Finds candidate LLM spans in request bytes; configured once from the vocabulary tables.
/// With a redactor, content values are handed over already scrubbed (fail closed: a value that
/// fails to scrub becomes the failure marker), so raw prompts never reach Python objects.
#[pyclass(frozen, module = "otlp_enricher._native")]
pub struct Scanner {
    config: ScanConfig,
    content: ContentRules,
    redactor: Option<Py<Redactor>>,
}

/// Scrubs content values while they become Python objects, counting what it does.
struct ContentScrub<'r> {
    rules: &'r ContentRules,
    redactor: Option<&'r CoreRedactor>,
    counts: HashMap<usize, u32>,
    failed: u32,
}

impl ContentScrub<'_> {
    fn attributes<'py>(
        &mut self,
        py: Python<'py>,
        attrs: &[Attr<'_>],
        all_content: bool,
    ) -> PyResult<(Bound<'py, PyDict>, bool)> {
        let Some(redactor) = self.redactor else {
            return Ok((attributes(py, attrs)?, false));
        };
        let dict = PyDict::new(py);
        let mut span_failed = false;
        for (key, value) in attrs {
            if all_content || self.rules.is_content_key(key.as_bytes()) {
                let mut failed = false;
                let converted = scrubbed_value(py, value, redactor, &mut self.counts, &mut failed)?;
                if failed {
                    self.failed += 1;
                    span_failed = true;
                    dict.set_item(*key, FAILED_MARKER)?;
                } else {
                    dict.set_item(*key, converted)?;
                }
            } else {
                dict.set_item(*key, any_value(py, value)?)?;
            }
        }
        Ok((dict, span_failed))
    }
}

fn scrubbed_value<'py>(
    py: Python<'py>,
    value: &AnyVal<'_>,
    redactor: &CoreRedactor,
    counts: &mut HashMap<usize, u32>,
    failed: &mut bool,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        AnyVal::Str(text) => match redactor.scrub(text) {
            Ok(result) => {
                for &(index, count) in &result.1 {
                    *counts.entry(index).or_default() += count;
                }
                PyString::new(py, &result.0).into_any()
            }
            Err(_) => {
                *failed = true;
                py.None().into_bound(py)
            }
        },
        AnyVal::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(scrubbed_value(py, item, redactor, counts, failed)?)?;
            }
            list.into_any()
        }
        AnyVal::KvList(items) => {
            let dict = PyDict::new(py);
            for (key, item) in items {
                dict.set_item(*key, scrubbed_value(py, item, redactor, counts, failed)?)?;
            }
            dict.into_any()
        }
        other => any_value(py, other)?,
    })
}

#[pymethods]
impl Scanner {
    #[new]
    #[pyo3(signature = (marker_keys, read_keys, read_prefixes, scope_prefixes, name_prefixes, content_keys=vec![], content_prefixes=vec![], content_event_names=vec![], content_event_prefixes=vec![], redactor=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        marker_keys: Vec<String>,
        read_keys: Vec<String>,
        read_prefixes: Vec<String>,
        scope_prefixes: Vec<String>,
        name_prefixes: Vec<String>,
        content_keys: Vec<String>,
        content_prefixes: Vec<String>,
        content_event_names: Vec<String>,
        content_event_prefixes: Vec<String>,
        redactor: Option<Py<Redactor>>,
    ) -> Self {
        let mut read = byte_set(read_keys);
        let marker = byte_set(marker_keys);
        read.extend(marker.iter().cloned());
        Scanner {
            config: ScanConfig {
                marker_keys: marker,
                read_keys: read,
                read_prefixes: byte_list(read_prefixes),
                scope_prefixes: byte_list(scope_prefixes),
                name_prefixes: byte_list(name_prefixes),
            },
            content: ContentRules {
                keys: byte_set(content_keys),
                prefixes: byte_list(content_prefixes),
                event_names: byte_set(content_event_names),
                event_prefixes: byte_list(content_event_prefixes),
            },
            redactor,
        }
    }

    /// Validates ``request`` and returns its span count, resources and candidate spans.
    fn scan(&self, py: Python<'_>, request: &Bound<'_, PyBytes>) -> PyResult<Scan> {
        let bytes = request.as_bytes();
        let config = &self.config;
        let found = py.detach(|| scan(bytes, config)).map_err(decode_error)?;
        let redactor = self.redactor.as_ref().map(|r| r.get());
        let mut scrub = ContentScrub {
            rules: &self.content,
            redactor: redactor.map(|r| &r.core),
            counts: HashMap::new(),
            failed: 0,
        };
        let resources = PyList::empty(py);
        for attrs in &found.resources {
            resources.append(attributes(py, attrs)?)?;
        }
        let spans = PyList::empty(py);
        for view in &found.spans {
            let scope = &found.scopes[view.scope as usize];
            let events = PyList::empty(py);
            let (span_attributes, mut redaction_failed) =
                scrub.attributes(py, &view.attributes, false)?;
            for event in &view.events {
                let all_content = self.content.is_content_event(event.name.as_bytes());
                let (event_attributes, failed) =
                    scrub.attributes(py, &event.attributes, all_content)?;
                redaction_failed |= failed;
                let event = Event {
                    name: PyString::new(py, event.name).into_any().unbind(),
                    time_unix_nano: event.time_unix_nano,
                    attributes: event_attributes.into_any().unbind(),
                };
                events.append(Py::new(py, event)?)?;
            }
            let status = Status {
                code: view.status_code,
                message: PyString::new(py, view.status_message).into_any().unbind(),
            };
            let span = Span {
                ordinal: view.ordinal,
                resource: view.resource,
                scope_name: PyString::new(py, scope.name).into_any().unbind(),
                scope_version: PyString::new(py, scope.version).into_any().unbind(),
                trace_id: PyBytes::new(py, view.trace_id).into_any().unbind(),
                span_id: PyBytes::new(py, view.span_id).into_any().unbind(),
                name: PyString::new(py, view.name).into_any().unbind(),
                kind: view.kind,
                start_time_unix_nano: view.start_time_unix_nano,
                end_time_unix_nano: view.end_time_unix_nano,
                status: Py::new(py, status)?.into_any(),
                attributes: span_attributes.into_any().unbind(),
                events: events.into_any().unbind(),
                redaction_failed,
            };
            spans.append(Py::new(py, span)?)?;
        }
        let redactions = PyDict::new(py);
        if let Some(redactor) = redactor {
            for (index, count) in scrub.counts {
                redactions.set_item(redactor.core.name(index), count)?;
            }
        }
        Ok(Scan {
            span_count: found.span_count,
            resources: resources.unbind(),
            spans: spans.unbind(),
            redactions: redactions.unbind(),
            redaction_failures: scrub.failed,
        })
    }
}

fn attributes<'py>(py: Python<'py>, attrs: &[Attr<'_>]) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (key, value) in attrs {
        dict.set_item(*key, any_value(py, value)?)?;
    }
    Ok(dict)
}

fn any_value<'py>(py: Python<'py>, value: &AnyVal<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        AnyVal::Empty => py.None().into_bound(py),
        AnyVal::Str(text) => PyString::new(py, text).into_any(),
        AnyVal::Bool(flag) => PyBool::new(py, *flag).to_owned().into_any(),
        AnyVal::Int(number) => number.into_pyobject(py)?.into_any(),
        AnyVal::Double(number) => PyFloat::new(py, *number).into_any(),
        AnyVal::Bytes(bytes) => PyBytes::new(py, bytes).into_any(),
        AnyVal::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(any_value(py, item)?)?;
            }
            list.into_any()
        }
        AnyVal::KvList(items) => attributes(py, items)?.into_any(),
    })
}

/// One scanned request.
#[pyclass(frozen, get_all, module = "otlp_enricher._native")]
pub struct Scan {
    span_count: u32,
    resources: Py<PyList>,
    spans: Py<PyList>,
    /// Matches per scrubber in the content handed over, and values that failed to scrub.
    redactions: Py<PyDict>,
    redaction_failures: u32,
}

/// A candidate span: what the rules read, no more.
#[pyclass(frozen, get_all, module = "otlp_enricher._native")]
pub struct Span {
    ordinal: u32,
    resource: u32,
    scope_name: Py<PyAny>,
    scope_version: Py<PyAny>,
    trace_id: Py<PyAny>,
    span_id: Py<PyAny>,
    name: Py<PyAny>,
    kind: i32,
    start_time_unix_nano: u64,
    end_time_unix_nano: u64,
    status: Py<PyAny>,
    attributes: Py<PyAny>,
    events: Py<PyAny>,
    /// A content value of this span failed to scrub and was replaced by the failure marker.
    redaction_failed: bool,
}

#[pyclass(frozen, get_all, module = "otlp_enricher._native")]
pub struct Status {
    code: i32,
    message: Py<PyAny>,
}

#[pyclass(frozen, get_all, module = "otlp_enricher._native")]
pub struct Event {
    name: Py<PyAny>,
    time_unix_nano: u64,
    attributes: Py<PyAny>,
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

/// Writes the enrichment into request bytes and applies the content policy to LLM spans.
#[pyclass(frozen, module = "otlp_enricher._native")]
pub struct Splicer {
    rules: ContentRules,
    content: Content,
    redactor: Option<Py<Redactor>>,
}

#[pymethods]
impl Splicer {
    #[new]
    fn new(
        content_keys: Vec<String>,
        content_prefixes: Vec<String>,
        content_event_names: Vec<String>,
        content_event_prefixes: Vec<String>,
        content: &str,
        redactor: Option<Py<Redactor>>,
    ) -> PyResult<Self> {
        let content = match content {
            "keep" => Content::Keep,
            "scrub" => Content::Scrub,
            "strip" => Content::Strip,
            other => {
                return Err(PyValueError::new_err(format!(
                    "content: expected keep, scrub or strip, got {other:?}"
                )))
            }
        };
        let rules = ContentRules {
            keys: byte_set(content_keys),
            prefixes: byte_list(content_prefixes),
            event_names: byte_set(content_event_names),
            event_prefixes: byte_list(content_event_prefixes),
        };
        Ok(Splicer {
            rules,
            content,
            redactor,
        })
    }

    /// ``edits``: span ordinal → (attribute key → new value or ``None`` to drop, attributes to
    /// add). Returns the new bytes, matches per scrubber name, and values that failed to scrub.
    fn splice<'py>(
        &self,
        py: Python<'py>,
        request: &Bound<'py, PyBytes>,
        edits: &Bound<'py, PyDict>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyDict>, u32)> {
        let mut parsed: HashMap<u32, SpanEdit> = HashMap::with_capacity(edits.len());
        for (ordinal, edit) in edits.iter() {
            let ordinal: u32 = ordinal.extract()?;
            let edit = edit.cast::<PyTuple>()?;
            let replace_dict = edit.get_item(0)?;
            let replace_dict = replace_dict.cast::<PyDict>()?;
            let mut replace = HashMap::with_capacity(replace_dict.len());
            for (key, value) in replace_dict.iter() {
                let encoded = if value.is_none() {
                    None
                } else {
                    Some(encode_value(&value)?)
                };
                replace.insert(key.extract::<String>()?, encoded);
            }
            let mut add = Vec::new();
            for pair in edit.get_item(1)?.try_iter()? {
                let (key, value): (String, Bound<'py, PyAny>) = pair?.extract()?;
                add.extend(attribute_field(&key, &encode_value(&value)?));
            }
            parsed.insert(ordinal, SpanEdit { replace, add });
        }
        let bytes = request.as_bytes();
        let redactor_ref = self.redactor.as_ref().map(|r| r.get());
        let splicer = CoreSplicer {
            edits: &parsed,
            content: self.content,
            rules: &self.rules,
            redactor: redactor_ref.map(|r| &r.core),
        };
        let (out, stats) = py.detach(|| splicer.splice(bytes)).map_err(decode_error)?;
        let counts = PyDict::new(py);
        if let Some(redactor) = redactor_ref {
            for (index, count) in stats.redactions {
                counts.set_item(redactor.core.name(index), count)?;
            }
        }
        Ok((PyBytes::new(py, &out), counts, stats.failed))
    }
}

/// An attribute value (str, bool, int or float) as an encoded ``AnyValue``.
fn encode_value(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(text) = value.cast::<PyString>() {
        put_bytes(&mut out, 1, text.to_str()?.as_bytes());
    } else if let Ok(flag) = value.cast::<PyBool>() {
        put_tag(&mut out, 2, 0);
        put_varint(&mut out, u64::from(flag.is_true()));
    } else if value.is_instance_of::<PyInt>() {
        put_tag(&mut out, 3, 0);
        put_varint(&mut out, value.extract::<i64>()? as u64);
    } else if let Ok(number) = value.cast::<PyFloat>() {
        put_tag(&mut out, 4, 1);
        out.extend_from_slice(&number.value().to_bits().to_le_bytes());
    } else {
        return Err(PyTypeError::new_err(
            "attribute values must be str, bool, int or float",
        ));
    }
    Ok(out)
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
