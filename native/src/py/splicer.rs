//! ``Splicer``: the enrichment and the content policy written into a request's bytes.

use std::collections::HashMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString, PyTuple};

use super::{content_rules, decode_error, Redactor};
use crate::splice::{attribute_field, Content, ContentRules, SpanEdit, Splicer as CoreSplicer};
use crate::wire::{put_bytes, put_tag, put_varint};

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
        let rules = content_rules(
            content_keys,
            content_prefixes,
            content_event_names,
            content_event_prefixes,
        );
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
