//! OTLP/JSON, written straight from protobuf bytes, the way the Collector's file exporter writes
//! it: hex trace and span ids, 64-bit integers as strings, enums as integers, base64 bytes, empty
//! and zero fields left out (``docs/reference/protocols.md`` §2). One line, no newline.

use crate::jsonvalue::{attributes_of, key_values};
use crate::jsonwrite::{comma, hex, string, Members};
use crate::wire::{Reader, Result};

/// The OTLP/JSON form of an ``ExportTraceServiceRequest``.
pub fn request_to_json(request: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(request.len() * 2);
    out.extend_from_slice(b"{\"resourceSpans\":[");
    let mut first = true;
    let mut reader = Reader::new(request);
    while let Some(field) = reader.next()? {
        if field.number == 1 {
            comma(&mut out, &mut first);
            resource_spans(field.bytes("resource_spans")?, &mut out)?;
        }
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

fn schema_url_member(out: &mut Vec<u8>, schema_url: &str) {
    if !schema_url.is_empty() {
        out.extend_from_slice(b",\"schemaUrl\":");
        string(out, schema_url);
    }
}

fn resource_spans(buf: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let (mut resource, mut schema_url): (&[u8], &str) = (b"", "");
    let mut scopes = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => resource = field.bytes("resource")?,
            2 => scopes.push(field.bytes("scope_spans")?),
            3 => schema_url = field.text("schema_url")?,
            _ => {}
        }
    }
    out.extend_from_slice(b"{\"resource\":{");
    let mut members = Members::first();
    attributes_of(resource, 1, 2, out, &mut members)?;
    out.extend_from_slice(b"},\"scopeSpans\":[");
    let mut first = true;
    for scope in scopes {
        comma(out, &mut first);
        scope_spans(scope, out)?;
    }
    out.push(b']');
    schema_url_member(out, schema_url);
    out.push(b'}');
    Ok(())
}

fn scope_spans(buf: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let (mut scope, mut schema_url): (&[u8], &str) = (b"", "");
    let mut spans = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => scope = field.bytes("scope")?,
            2 => spans.push(field.bytes("span")?),
            3 => schema_url = field.text("schema_url")?,
            _ => {}
        }
    }
    let (mut name, mut version) = ("", "");
    let mut reader = Reader::new(scope);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => name = field.text("scope.name")?,
            2 => version = field.text("scope.version")?,
            _ => {}
        }
    }
    out.extend_from_slice(b"{\"scope\":{\"name\":");
    string(out, name);
    let mut members = Members::after_first();
    if !version.is_empty() {
        members.key(out, "version");
        string(out, version);
    }
    attributes_of(scope, 3, 4, out, &mut members)?;
    out.extend_from_slice(b"},\"spans\":[");
    let mut first = true;
    for span_bytes in spans {
        comma(out, &mut first);
        span(span_bytes, out)?;
    }
    out.push(b']');
    schema_url_member(out, schema_url);
    out.push(b'}');
    Ok(())
}

#[derive(Default)]
struct SpanFields<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a str,
    parent_span_id: &'a [u8],
    flags: u32,
    name: &'a str,
    kind: u64,
    start: u64,
    end: u64,
    attributes: Vec<&'a [u8]>,
    dropped_attributes: u64,
    events: Vec<&'a [u8]>,
    dropped_events: u64,
    links: Vec<&'a [u8]>,
    dropped_links: u64,
    status: Option<&'a [u8]>,
}

fn span(buf: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut s = SpanFields::default();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => s.trace_id = field.bytes("trace_id")?,
            2 => s.span_id = field.bytes("span_id")?,
            3 => s.trace_state = field.text("trace_state")?,
            4 => s.parent_span_id = field.bytes("parent_span_id")?,
            5 => s.name = field.text("name")?,
            6 => s.kind = field.varint("kind")?,
            7 => s.start = field.fixed64("start")?,
            8 => s.end = field.fixed64("end")?,
            9 => s.attributes.push(field.bytes("attribute")?),
            10 => s.dropped_attributes = field.varint("dropped")?,
            11 => s.events.push(field.bytes("event")?),
            12 => s.dropped_events = field.varint("dropped")?,
            13 => s.links.push(field.bytes("link")?),
            14 => s.dropped_links = field.varint("dropped")?,
            15 => s.status = Some(field.bytes("status")?),
            16 => s.flags = field.fixed32("flags")?,
            _ => {}
        }
    }
    out.extend_from_slice(b"{\"traceId\":");
    hex(out, s.trace_id);
    out.extend_from_slice(b",\"spanId\":");
    hex(out, s.span_id);
    out.extend_from_slice(b",\"name\":");
    string(out, s.name);
    out.extend_from_slice(format!(",\"kind\":{}", s.kind as i32).as_bytes());
    out.extend_from_slice(
        format!(
            ",\"startTimeUnixNano\":\"{}\",\"endTimeUnixNano\":\"{}\"",
            s.start, s.end
        )
        .as_bytes(),
    );
    let mut m = Members::after_first();
    if !s.parent_span_id.is_empty() {
        m.key(out, "parentSpanId");
        hex(out, s.parent_span_id);
    }
    if !s.trace_state.is_empty() {
        m.key(out, "traceState");
        string(out, s.trace_state);
    }
    if s.flags != 0 {
        m.key(out, "flags");
        out.extend_from_slice(s.flags.to_string().as_bytes());
    }
    key_values(out, &mut m, &s.attributes, s.dropped_attributes)?;
    if !s.events.is_empty() {
        m.key(out, "events");
        out.push(b'[');
        let mut first = true;
        for event_bytes in &s.events {
            comma(out, &mut first);
            event(event_bytes, out)?;
        }
        out.push(b']');
    }
    if s.dropped_events != 0 {
        m.key(out, "droppedEventsCount");
        out.extend_from_slice(s.dropped_events.to_string().as_bytes());
    }
    if !s.links.is_empty() {
        m.key(out, "links");
        out.push(b'[');
        let mut first = true;
        for link_bytes in &s.links {
            comma(out, &mut first);
            link(link_bytes, out)?;
        }
        out.push(b']');
    }
    if s.dropped_links != 0 {
        m.key(out, "droppedLinksCount");
        out.extend_from_slice(s.dropped_links.to_string().as_bytes());
    }
    if let Some(status_bytes) = s.status {
        status(status_bytes, out, &mut m)?;
    }
    out.push(b'}');
    Ok(())
}

fn event(buf: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let (mut time, mut name) = (0u64, "");
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => time = field.fixed64("event.time")?,
            2 => name = field.text("event.name")?,
            _ => {}
        }
    }
    out.extend_from_slice(format!("{{\"timeUnixNano\":\"{time}\",\"name\":").as_bytes());
    string(out, name);
    let mut m = Members::after_first();
    attributes_of(buf, 3, 4, out, &mut m)?;
    out.push(b'}');
    Ok(())
}

fn link(buf: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let (mut trace_id, mut span_id, mut trace_state, mut flags): (&[u8], &[u8], &str, u32) =
        (b"", b"", "", 0);
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => trace_id = field.bytes("link.trace_id")?,
            2 => span_id = field.bytes("link.span_id")?,
            3 => trace_state = field.text("link.trace_state")?,
            6 => flags = field.fixed32("link.flags")?,
            _ => {}
        }
    }
    out.extend_from_slice(b"{\"traceId\":");
    hex(out, trace_id);
    out.extend_from_slice(b",\"spanId\":");
    hex(out, span_id);
    let mut m = Members::after_first();
    if !trace_state.is_empty() {
        m.key(out, "traceState");
        string(out, trace_state);
    }
    if flags != 0 {
        m.key(out, "flags");
        out.extend_from_slice(flags.to_string().as_bytes());
    }
    attributes_of(buf, 4, 5, out, &mut m)?;
    out.push(b'}');
    Ok(())
}

fn status(buf: &[u8], out: &mut Vec<u8>, m: &mut Members) -> Result<()> {
    let (mut code, mut message) = (0u64, "");
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            2 => message = field.text("status.message")?,
            3 => code = field.varint("status.code")?,
            _ => {}
        }
    }
    if code == 0 && message.is_empty() {
        return Ok(());
    }
    m.key(out, "status");
    out.push(b'{');
    let mut inner = Members::first();
    if code != 0 {
        inner.key(out, "code");
        out.extend_from_slice((code as i32).to_string().as_bytes());
    }
    if !message.is_empty() {
        inner.key(out, "message");
        string(out, message);
    }
    out.push(b'}');
    Ok(())
}
