//! Splicing: the enrichment written into the spans' own bytes, content scrubbed or stripped.
//!
//! Only spans named in ``edits`` (the recognised LLM calls, by ordinal) change: their attributes
//! listed in ``replace`` are rewritten or dropped (user ids), their content attributes (and every
//! attribute of a content event) are kept, scrubbed or stripped, and ``add`` is appended as new
//! ``attributes`` fields. Every enclosing length prefix is rewritten; all other bytes are copied.
//! Repeated fields concatenate on the wire, so appending is a valid edit.

use std::collections::{HashMap, HashSet};

use crate::anyvalue::split_key_value;
use crate::redact::Redactor;
use crate::wire::{put_bytes, put_nested, Reader, Result};

pub const FAILED_MARKER: &str = "[REDACTED:scrubber_error]";

/// What happens to one span.
#[derive(Debug, Default, Clone)]
pub struct SpanEdit {
    /// Attribute key → new encoded ``AnyValue``, or ``None`` to drop the attribute.
    pub replace: HashMap<String, Option<Vec<u8>>>,
    /// Encoded ``attributes`` fields (tag, length, ``KeyValue``) appended to the span.
    pub add: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Keep,
    Scrub,
    Strip,
}

/// Which attributes and events carry prompt or completion content (from ``semconv/keys.py``).
#[derive(Debug, Default, Clone)]
pub struct ContentRules {
    pub keys: HashSet<Vec<u8>>,
    pub prefixes: Vec<Vec<u8>>,
    pub event_names: HashSet<Vec<u8>>,
    pub event_prefixes: Vec<Vec<u8>>,
}

impl ContentRules {
    pub fn is_content_key(&self, key: &[u8]) -> bool {
        self.keys.contains(key) || self.prefixes.iter().any(|p| key.starts_with(p))
    }

    pub fn is_content_event(&self, name: &[u8]) -> bool {
        self.event_names.contains(name) || self.event_prefixes.iter().any(|p| name.starts_with(p))
    }
}

/// Matches per scrubber index and values that failed to scrub (replaced by [`FAILED_MARKER`]).
#[derive(Debug, Default)]
pub struct Stats {
    pub redactions: HashMap<usize, u32>,
    pub failed: u32,
}

pub struct Splicer<'r> {
    pub edits: &'r HashMap<u32, SpanEdit>,
    pub content: Content,
    pub rules: &'r ContentRules,
    pub redactor: Option<&'r Redactor>,
}

impl Splicer<'_> {
    /// The edited request and what redaction did.
    pub fn splice(&self, request: &[u8]) -> Result<(Vec<u8>, Stats)> {
        let mut out = Vec::with_capacity(request.len() + self.edits.len() * 256);
        let mut stats = Stats::default();
        let mut ordinal = 0u32;
        let mut reader = Reader::new(request);
        while let Some(field) = reader.next()? {
            if field.number == 1 {
                let body = field.bytes("resource_spans")?;
                try_nested(&mut out, 1, |out| {
                    self.resource_spans(body, out, &mut ordinal, &mut stats)
                })?;
            } else {
                out.extend_from_slice(field.raw);
            }
        }
        Ok((out, stats))
    }

    fn resource_spans(
        &self,
        buf: &[u8],
        out: &mut Vec<u8>,
        ordinal: &mut u32,
        stats: &mut Stats,
    ) -> Result<()> {
        let mut reader = Reader::new(buf);
        while let Some(field) = reader.next()? {
            if field.number == 2 {
                let body = field.bytes("scope_spans")?;
                try_nested(out, 2, |out| self.scope_spans(body, out, ordinal, stats))?;
            } else {
                out.extend_from_slice(field.raw);
            }
        }
        Ok(())
    }

    fn scope_spans(
        &self,
        buf: &[u8],
        out: &mut Vec<u8>,
        ordinal: &mut u32,
        stats: &mut Stats,
    ) -> Result<()> {
        let mut reader = Reader::new(buf);
        while let Some(field) = reader.next()? {
            if field.number != 2 {
                out.extend_from_slice(field.raw);
                continue;
            }
            let index = *ordinal;
            *ordinal += 1;
            match self.edits.get(&index) {
                None => out.extend_from_slice(field.raw),
                Some(edit) => {
                    let body = field.bytes("span")?;
                    try_nested(out, 2, |out| self.span(body, edit, out, stats))?;
                }
            }
        }
        Ok(())
    }

    fn span(
        &self,
        buf: &[u8],
        edit: &SpanEdit,
        out: &mut Vec<u8>,
        stats: &mut Stats,
    ) -> Result<()> {
        let mut reader = Reader::new(buf);
        while let Some(field) = reader.next()? {
            match field.number {
                9 => self.attribute(
                    field.bytes("span attribute")?,
                    field.raw,
                    9,
                    false,
                    edit,
                    out,
                    stats,
                )?,
                11 => {
                    let body = field.bytes("span event")?;
                    try_nested(out, 11, |out| self.event(body, edit, out, stats))?;
                }
                _ => out.extend_from_slice(field.raw),
            }
        }
        out.extend_from_slice(&edit.add);
        Ok(())
    }

    fn event(
        &self,
        buf: &[u8],
        edit: &SpanEdit,
        out: &mut Vec<u8>,
        stats: &mut Stats,
    ) -> Result<()> {
        let mut name: &[u8] = b"";
        let mut reader = Reader::new(buf);
        while let Some(field) = reader.next()? {
            if field.number == 2 {
                name = field.bytes("event.name")?;
            }
        }
        let all_content = self.rules.is_content_event(name);
        let mut reader = Reader::new(buf);
        while let Some(field) = reader.next()? {
            if field.number == 3 {
                self.attribute(
                    field.bytes("event attribute")?,
                    field.raw,
                    3,
                    all_content,
                    edit,
                    out,
                    stats,
                )?;
            } else {
                out.extend_from_slice(field.raw);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn attribute(
        &self,
        key_value: &[u8],
        raw: &[u8],
        number: u32,
        all_content: bool,
        edit: &SpanEdit,
        out: &mut Vec<u8>,
        stats: &mut Stats,
    ) -> Result<()> {
        let (key, value) = split_key_value(key_value)?;
        if let Some(replacement) = edit.replace.get(key) {
            if let Some(encoded) = replacement {
                put_nested(out, number, |out| {
                    put_bytes(out, 1, key.as_bytes());
                    put_bytes(out, 2, encoded);
                });
            }
            return Ok(());
        }
        if !(all_content || self.rules.is_content_key(key.as_bytes())) {
            out.extend_from_slice(raw);
            return Ok(());
        }
        match (self.content, self.redactor) {
            (Content::Strip, _) => {}
            (Content::Scrub, Some(redactor)) if !redactor.is_empty() => {
                let mut scrubbed = Vec::with_capacity(value.len());
                let mut counts = HashMap::new();
                if scrub_any(value, redactor, &mut scrubbed, &mut counts).is_err() {
                    scrubbed.clear();
                    put_bytes(&mut scrubbed, 1, FAILED_MARKER.as_bytes());
                    stats.failed += 1;
                } else {
                    for (index, count) in counts {
                        *stats.redactions.entry(index).or_default() += count;
                    }
                }
                put_nested(out, number, |out| {
                    put_bytes(out, 1, key.as_bytes());
                    put_bytes(out, 2, &scrubbed);
                });
            }
            _ => out.extend_from_slice(raw),
        }
        Ok(())
    }
}

/// Why a value could not be scrubbed: malformed, or a scrubber failed.
pub enum ScrubError {
    Decode,
    Failed,
}

/// Writes ``value`` (an encoded ``AnyValue``) with every string inside it scrubbed.
fn scrub_any(
    value: &[u8],
    redactor: &Redactor,
    out: &mut Vec<u8>,
    counts: &mut HashMap<usize, u32>,
) -> std::result::Result<(), ScrubError> {
    let mut reader = Reader::new(value);
    while let Some(field) = reader.next().map_err(|_| ScrubError::Decode)? {
        match field.number {
            1 => {
                let text = field.text("string_value").map_err(|_| ScrubError::Decode)?;
                let scrubbed = redactor.scrub(text).map_err(|_| ScrubError::Failed)?;
                for &(index, count) in &scrubbed.1 {
                    *counts.entry(index).or_default() += count;
                }
                put_bytes(out, 1, scrubbed.0.as_bytes());
            }
            5 | 6 => {
                let body = field.bytes("nested").map_err(|_| ScrubError::Decode)?;
                let mut nested = Vec::with_capacity(body.len());
                let mut items = Reader::new(body);
                while let Some(item) = items.next().map_err(|_| ScrubError::Decode)? {
                    if item.number != 1 {
                        nested.extend_from_slice(item.raw);
                        continue;
                    }
                    let item_body = item.bytes("item").map_err(|_| ScrubError::Decode)?;
                    let mut rewritten = Vec::with_capacity(item_body.len());
                    if field.number == 5 {
                        scrub_any(item_body, redactor, &mut rewritten, counts)?;
                    } else {
                        let (key, inner) =
                            split_key_value(item_body).map_err(|_| ScrubError::Decode)?;
                        let mut inner_out = Vec::with_capacity(inner.len());
                        scrub_any(inner, redactor, &mut inner_out, counts)?;
                        put_bytes(&mut rewritten, 1, key.as_bytes());
                        put_bytes(&mut rewritten, 2, &inner_out);
                    }
                    put_bytes(&mut nested, 1, &rewritten);
                }
                put_bytes(out, field.number, &nested);
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    Ok(())
}

/// [`put_nested`] for a body that can fail: the error of ``body`` is returned after the field
/// is closed (the caller discards the output on error).
fn try_nested(
    out: &mut Vec<u8>,
    number: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let mut result = Ok(());
    put_nested(out, number, |out| result = body(out));
    result
}

/// The encoded ``attributes`` field of one ``KeyValue``.
pub fn attribute_field(key: &str, encoded_value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + encoded_value.len() + 8);
    put_nested(&mut out, 9, |out| {
        put_bytes(out, 1, key.as_bytes());
        put_bytes(out, 2, encoded_value);
    });
    out
}
