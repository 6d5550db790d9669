//! One pass over an ``ExportTraceServiceRequest``: validate every byte, count the spans, and
//! collect — for candidate LLM spans only — the attribute values the Python rules read.
//!
//! Which spans are candidates and which keys are read is configuration ([`ScanConfig`]), built
//! in Python from ``otlp_enricher/semconv/candidates.py``: this module knows no vocabulary.
//! Field numbers: ``opentelemetry/proto/trace/v1/trace.proto`` and ``common/v1/common.proto``.

use std::collections::HashSet;

use crate::anyvalue::{any_value, check_any_value, check_key_value, split_key_value, Attr};
use crate::wire::{Reader, Result};

/// What makes a span a candidate LLM call and which attribute values are decoded.
#[derive(Debug, Default, Clone)]
pub struct ScanConfig {
    pub marker_keys: HashSet<Vec<u8>>,
    pub read_keys: HashSet<Vec<u8>>,
    pub read_prefixes: Vec<Vec<u8>>,
    pub scope_prefixes: Vec<Vec<u8>>,
    pub name_prefixes: Vec<Vec<u8>>,
}

impl ScanConfig {
    fn reads(&self, key: &[u8]) -> bool {
        self.read_keys.contains(key) || self.read_prefixes.iter().any(|p| key.starts_with(p))
    }

    fn marks_scope(&self, name: &[u8]) -> bool {
        self.scope_prefixes.iter().any(|p| name.starts_with(p))
    }

    fn marks_name(&self, name: &[u8]) -> bool {
        self.name_prefixes.iter().any(|p| name.starts_with(p))
    }
}

#[derive(Debug, Default)]
pub struct EventView<'a> {
    pub name: &'a str,
    pub time_unix_nano: u64,
    pub attributes: Vec<Attr<'a>>,
}

/// A candidate span: identity, timing, status, and only the attributes the rules read.
#[derive(Debug, Default)]
pub struct SpanView<'a> {
    /// Position of the span among all spans of the request (the splicer's address).
    pub ordinal: u32,
    pub resource: u32,
    pub scope: u32,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub name: &'a str,
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub status_code: i32,
    pub status_message: &'a str,
    pub attributes: Vec<Attr<'a>>,
    pub events: Vec<EventView<'a>>,
}

#[derive(Debug, Default)]
pub struct ScopeView<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

/// The result of a scan: every resource's read attributes, every scope, the candidate spans.
#[derive(Debug, Default)]
pub struct Scan<'a> {
    pub span_count: u32,
    pub resources: Vec<Vec<Attr<'a>>>,
    pub scopes: Vec<ScopeView<'a>>,
    pub spans: Vec<SpanView<'a>>,
}

/// Validates ``request`` and collects the candidate spans.
pub fn scan<'a>(request: &'a [u8], config: &ScanConfig) -> Result<Scan<'a>> {
    let mut out = Scan::default();
    let mut reader = Reader::new(request);
    while let Some(field) = reader.next()? {
        if field.number == 1 {
            resource_spans(field.bytes("resource_spans")?, config, &mut out)?;
        }
    }
    Ok(out)
}

fn resource_spans<'a>(buf: &'a [u8], config: &ScanConfig, out: &mut Scan<'a>) -> Result<()> {
    let resource_index = out.resources.len() as u32;
    out.resources.push(Vec::new());
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => {
                let attrs = resource(field.bytes("resource")?, config)?;
                out.resources[resource_index as usize] = attrs;
            }
            2 => scope_spans(field.bytes("scope_spans")?, config, resource_index, out)?,
            3 => {
                field.text("schema_url")?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn resource<'a>(buf: &'a [u8], config: &ScanConfig) -> Result<Vec<Attr<'a>>> {
    let mut attrs = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => key_value(
                field.bytes("resource attribute")?,
                config,
                &mut attrs,
                &mut false,
            )?,
            2 => {
                field.varint("resource.dropped_attributes_count")?;
            }
            3 => check_entity_ref(field.bytes("resource.entity_refs")?)?,
            _ => {}
        }
    }
    Ok(attrs)
}

/// ``EntityRef``: four string fields (schema_url, type, id_keys, description_keys), UTF-8 like all.
fn check_entity_ref(buf: &[u8]) -> Result<()> {
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        if (1..=4).contains(&field.number) {
            field.text("entity_ref string")?;
        }
    }
    Ok(())
}

fn scope_spans<'a>(
    buf: &'a [u8],
    config: &ScanConfig,
    resource: u32,
    out: &mut Scan<'a>,
) -> Result<()> {
    let scope_index = out.scopes.len() as u32;
    out.scopes.push(ScopeView::default());
    let mut reader = Reader::new(buf);
    // The scope normally precedes the spans, but the wire allows any order: spans seen before
    // their scope are checked against it once the message ends.
    let first_span = out.spans.len();
    let mut scope_marks = false;
    let mut unmarked: Vec<SpanView<'a>> = Vec::new();
    while let Some(field) = reader.next()? {
        match field.number {
            1 => {
                let view = scope(field.bytes("scope")?)?;
                scope_marks = config.marks_scope(view.name.as_bytes());
                out.scopes[scope_index as usize] = view;
            }
            2 => {
                let ordinal = out.span_count;
                out.span_count += 1;
                let (mut view, candidate) = span(field.bytes("span")?, config)?;
                view.ordinal = ordinal;
                view.resource = resource;
                view.scope = scope_index;
                if candidate {
                    out.spans.push(view);
                } else {
                    unmarked.push(view);
                }
            }
            3 => {
                field.text("schema_url")?;
            }
            _ => {}
        }
    }
    if scope_marks && !unmarked.is_empty() {
        out.spans.extend(unmarked);
        out.spans[first_span..].sort_by_key(|view| view.ordinal);
    }
    Ok(())
}

fn scope(buf: &[u8]) -> Result<ScopeView<'_>> {
    let mut view = ScopeView::default();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => view.name = field.text("scope.name")?,
            2 => view.version = field.text("scope.version")?,
            3 => check_key_value(field.bytes("scope attribute")?)?,
            4 => {
                field.varint("scope.dropped_attributes_count")?;
            }
            _ => {}
        }
    }
    Ok(view)
}

/// Reads one span; the flag says whether its own bytes make it a candidate.
fn span<'a>(buf: &'a [u8], config: &ScanConfig) -> Result<(SpanView<'a>, bool)> {
    let mut view = SpanView::default();
    let mut candidate = false;
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => view.trace_id = field.bytes("span.trace_id")?,
            2 => view.span_id = field.bytes("span.span_id")?,
            3 => {
                field.text("span.trace_state")?;
            }
            4 => {
                field.bytes("span.parent_span_id")?;
            }
            5 => view.name = field.text("span.name")?,
            6 => view.kind = field.varint("span.kind")? as i32,
            7 => view.start_time_unix_nano = field.fixed64("span.start_time_unix_nano")?,
            8 => view.end_time_unix_nano = field.fixed64("span.end_time_unix_nano")?,
            9 => key_value(
                field.bytes("span attribute")?,
                config,
                &mut view.attributes,
                &mut candidate,
            )?,
            11 => view.events.push(event(field.bytes("span event")?, config)?),
            13 => link(field.bytes("span link")?)?,
            15 => {
                let (code, message) = status(field.bytes("span.status")?)?;
                view.status_code = code;
                view.status_message = message;
            }
            16 => {
                field.fixed32("span.flags")?;
            }
            10 | 12 | 14 => {
                field.varint("span dropped count")?;
            }
            _ => {}
        }
    }
    if !candidate && config.marks_name(view.name.as_bytes()) {
        candidate = true;
    }
    if !candidate {
        view.attributes.clear();
        view.events.clear();
    }
    Ok((view, candidate))
}

fn event<'a>(buf: &'a [u8], config: &ScanConfig) -> Result<EventView<'a>> {
    let mut view = EventView::default();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => view.time_unix_nano = field.fixed64("event.time_unix_nano")?,
            2 => view.name = field.text("event.name")?,
            3 => key_value(
                field.bytes("event attribute")?,
                config,
                &mut view.attributes,
                &mut false,
            )?,
            4 => {
                field.varint("event.dropped_attributes_count")?;
            }
            _ => {}
        }
    }
    Ok(view)
}

fn link(buf: &[u8]) -> Result<()> {
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 | 2 => {
                field.bytes("link id")?;
            }
            3 => {
                field.text("link.trace_state")?;
            }
            4 => check_key_value(field.bytes("link attribute")?)?,
            5 => {
                field.varint("link.dropped_attributes_count")?;
            }
            6 => {
                field.fixed32("link.flags")?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn status(buf: &[u8]) -> Result<(i32, &str)> {
    let (mut code, mut message) = (0, "");
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            2 => message = field.text("status.message")?,
            3 => code = field.varint("status.code")? as i32,
            _ => {}
        }
    }
    Ok((code, message))
}

fn key_value<'a>(
    buf: &'a [u8],
    config: &ScanConfig,
    attrs: &mut Vec<Attr<'a>>,
    marked: &mut bool,
) -> Result<()> {
    let (key, value) = split_key_value(buf)?;
    if config.reads(key.as_bytes()) {
        attrs.push((key, any_value(value)?));
        if config.marker_keys.contains(key.as_bytes()) {
            *marked = true;
        }
    } else {
        check_any_value(value)?;
    }
    Ok(())
}
