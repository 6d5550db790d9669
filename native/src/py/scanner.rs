//! ``Scanner``: a request's candidate LLM spans as Python objects, content scrubbed on the way.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString};

use super::{byte_list, byte_set, content_rules, decode_error, Redactor};
use crate::anyvalue::{AnyVal, Attr};
use crate::redact::Redactor as CoreRedactor;
use crate::scan::{scan, ScanConfig};
use crate::splice::{ContentRules, FAILED_MARKER};

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
            content: content_rules(
                content_keys,
                content_prefixes,
                content_event_names,
                content_event_prefixes,
            ),
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
