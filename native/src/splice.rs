//! Splicing: the enrichment written into the spans' own bytes, content scrubbed or stripped.
//!
//! Only spans named in ``edits`` (the recognised LLM calls, by ordinal) change: their attributes
//! listed in ``replace`` are rewritten or dropped (user ids), their content attributes (and every
//! attribute of a content event) are kept, scrubbed or stripped, and ``add`` is appended as new
//! ``attributes`` fields. Every enclosing length prefix is rewritten; all other bytes are copied.
//! Repeated fields concatenate on the wire, so appending is a valid edit.

use std::collections::{HashMap, HashSet};

use crate::redact::Redactor;
use crate::scan::split_key_value;
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

/// Cuts ``request`` into requests of at most ``max_spans`` spans and about ``max_bytes`` bytes
/// each (a single span larger than that travels alone), every span under its own resource and
/// scope; with the span count of each part. Fields other than the spans are copied into every
/// part that holds spans of their resource or scope.
pub fn split(request: &[u8], max_spans: usize, max_bytes: usize) -> Result<Vec<(Vec<u8>, u32)>> {
    let mut parts = Vec::new();
    let mut part = Part::default();
    let mut reader = Reader::new(request);
    while let Some(field) = reader.next()? {
        if field.number != 1 {
            continue;
        }
        let mut resource_head = Vec::new(); // every field of ResourceSpans but its scope_spans
        let mut scopes = Vec::new();
        let mut resource_reader = Reader::new(field.bytes("resource_spans")?);
        while let Some(resource_field) = resource_reader.next()? {
            if resource_field.number == 2 {
                scopes.push(resource_field.bytes("scope_spans")?);
            } else {
                resource_head.extend_from_slice(resource_field.raw);
            }
        }
        for scope in scopes {
            let mut scope_head = Vec::new();
            let mut spans = Vec::new();
            let mut scope_reader = Reader::new(scope);
            while let Some(scope_field) = scope_reader.next()? {
                if scope_field.number == 2 {
                    spans.push(scope_field.raw);
                } else {
                    scope_head.extend_from_slice(scope_field.raw);
                }
            }
            let overhead = resource_head.len() + scope_head.len() + 16;
            for span in spans {
                if part.spans > 0
                    && (part.spans as usize >= max_spans
                        || part.bytes + span.len() + overhead > max_bytes)
                {
                    parts.push(part.finish());
                }
                part.add(&resource_head, &scope_head, span);
            }
            part.close_scope();
        }
        part.close_resource();
    }
    if part.spans > 0 {
        parts.push(part.finish());
    }
    Ok(parts)
}

/// A part being built: finished resources, and the open resource and scope.
#[derive(Default)]
struct Part {
    done: Vec<u8>,
    resource: Option<(Vec<u8>, Vec<u8>)>, // (head, finished scopes)
    scope: Option<(Vec<u8>, Vec<u8>)>,    // (head, spans)
    spans: u32,
    bytes: usize,
}

impl Part {
    fn add(&mut self, resource_head: &[u8], scope_head: &[u8], span: &[u8]) {
        if self.resource.is_none() {
            self.resource = Some((resource_head.to_vec(), Vec::new()));
            self.bytes += resource_head.len() + 8;
        }
        if self.scope.is_none() {
            self.scope = Some((scope_head.to_vec(), Vec::new()));
            self.bytes += scope_head.len() + 8;
        }
        let (_, spans) = self.scope.as_mut().expect("open scope");
        spans.extend_from_slice(span);
        self.spans += 1;
        self.bytes += span.len();
    }

    fn close_scope(&mut self) {
        if let Some((head, spans)) = self.scope.take() {
            let (_, scopes) = self.resource.as_mut().expect("open resource");
            put_nested(scopes, 2, |out| {
                out.extend_from_slice(&head);
                out.extend_from_slice(&spans);
            });
        }
    }

    fn close_resource(&mut self) {
        self.close_scope();
        if let Some((head, scopes)) = self.resource.take() {
            put_nested(&mut self.done, 1, |out| {
                out.extend_from_slice(&head);
                out.extend_from_slice(&scopes);
            });
        }
    }

    fn finish(&mut self) -> (Vec<u8>, u32) {
        self.close_resource();
        let spans = self.spans;
        // The next part reopens the same resource and scope when it takes more of their spans.
        let done = std::mem::take(&mut self.done);
        self.spans = 0;
        self.bytes = 0;
        (done, spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{scan, ScanConfig};

    fn span(id: u8, payload: usize) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, &[id; 16]);
        put_bytes(&mut out, 2, &[id; 8]);
        put_bytes(&mut out, 5, &vec![b'x'; payload]);
        out
    }

    fn request(resources: &[&[Vec<u8>]]) -> Vec<u8> {
        let mut out = Vec::new();
        for spans in resources {
            put_nested(&mut out, 1, |rs| {
                put_nested(rs, 1, |r| {
                    put_nested(r, 1, |kv| put_bytes(kv, 1, b"service.name"))
                });
                put_nested(rs, 2, |ss| {
                    put_nested(ss, 1, |s| put_bytes(s, 1, b"scope"));
                    for one in *spans {
                        put_bytes(ss, 2, one);
                    }
                });
            });
        }
        out
    }

    #[test]
    fn split_keeps_every_span_once_in_order_under_its_resource() {
        let first: Vec<Vec<u8>> = (0..5).map(|i| span(i, 10)).collect();
        let second: Vec<Vec<u8>> = (5..8).map(|i| span(i, 10)).collect();
        let whole = request(&[&first, &second]);
        let parts = split(&whole, 2, 1 << 20).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.1).collect::<Vec<_>>(),
            vec![2, 2, 2, 2]
        );
        let config = ScanConfig::default();
        let mut ids = Vec::new();
        for (part, count) in &parts {
            let found = scan(part, &config).unwrap();
            assert_eq!(found.span_count, *count);
            assert!(found.resources.len() <= 2);
        }
        // Every span's bytes appear in exactly one part, in the original order.
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.0.clone()).collect();
        for one in first.iter().chain(&second) {
            let at = joined
                .windows(one.len())
                .position(|w| w == one.as_slice())
                .unwrap();
            ids.push(at);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn split_by_bytes_lets_a_large_span_travel_alone() {
        let spans = vec![span(1, 10), span(2, 5000), span(3, 10)];
        let parts = split(&request(&[&spans]), 100, 1000).unwrap();
        assert_eq!(parts.iter().map(|p| p.1).collect::<Vec<_>>(), vec![1, 1, 1]);
    }
}
