//! Attributes in OTLP/JSON: ``KeyValue`` lists, and ``AnyValue`` objects written from their decoding
//! (``anyvalue.rs``: the one place that knows how protobuf reads a value).

use crate::anyvalue::{any_value, split_key_value, AnyVal};
use crate::jsonwrite::{base64, comma, double, string, Members};
use crate::wire::{Reader, Result};

/// The ``attributes`` (field ``attributes_field``) and dropped count of a message, as members.
pub fn attributes_of(
    buf: &[u8],
    attributes_field: u32,
    dropped_field: u32,
    out: &mut Vec<u8>,
    m: &mut Members,
) -> Result<()> {
    let mut attributes = Vec::new();
    let mut dropped = 0;
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        if field.number == attributes_field {
            attributes.push(field.bytes("attribute")?);
        } else if field.number == dropped_field {
            dropped = field.varint("dropped_attributes_count")?;
        }
    }
    key_values(out, m, &attributes, dropped)
}

/// The ``attributes`` and ``droppedAttributesCount`` members, each when not empty.
pub fn key_values(
    out: &mut Vec<u8>,
    m: &mut Members,
    attributes: &[&[u8]],
    dropped: u64,
) -> Result<()> {
    if !attributes.is_empty() {
        m.key(out, "attributes");
        key_value_list(out, attributes)?;
    }
    if dropped != 0 {
        m.key(out, "droppedAttributesCount");
        out.extend_from_slice(dropped.to_string().as_bytes());
    }
    Ok(())
}

/// A JSON array of ``{"key": …, "value": …}`` objects, from encoded ``KeyValue``s.
fn key_value_list(out: &mut Vec<u8>, items: &[&[u8]]) -> Result<()> {
    out.push(b'[');
    let mut first = true;
    for item in items {
        comma(out, &mut first);
        let (key, value) = split_key_value(item)?;
        key_value(out, key, &any_value(value)?);
    }
    out.push(b']');
    Ok(())
}

fn key_value(out: &mut Vec<u8>, key: &str, value: &AnyVal<'_>) {
    out.extend_from_slice(b"{\"key\":");
    string(out, key);
    out.extend_from_slice(b",\"value\":");
    write_any(out, value);
    out.push(b'}');
}

/// One ``AnyValue`` (decoded as protobuf reads it: [`any_value`]) as its JSON object.
fn write_any(out: &mut Vec<u8>, value: &AnyVal<'_>) {
    match value {
        AnyVal::Empty => {
            out.extend_from_slice(b"{}");
            return;
        }
        AnyVal::Str(text) => {
            out.extend_from_slice(b"{\"stringValue\":");
            string(out, text);
        }
        AnyVal::Bool(flag) => out.extend_from_slice(if *flag {
            b"{\"boolValue\":true"
        } else {
            b"{\"boolValue\":false"
        }),
        AnyVal::Int(number) => {
            out.extend_from_slice(format!("{{\"intValue\":\"{number}\"").as_bytes())
        }
        AnyVal::Double(number) => {
            out.extend_from_slice(b"{\"doubleValue\":");
            double(out, *number);
        }
        AnyVal::Array(items) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            let mut first = true;
            for item in items {
                comma(out, &mut first);
                write_any(out, item);
            }
            out.extend_from_slice(b"]}");
        }
        AnyVal::KvList(items) => {
            out.extend_from_slice(b"{\"kvlistValue\":{\"values\":[");
            let mut first = true;
            for (key, item) in items {
                comma(out, &mut first);
                key_value(out, key, item);
            }
            out.extend_from_slice(b"]}");
        }
        AnyVal::Bytes(bytes) => {
            out.extend_from_slice(b"{\"bytesValue\":\"");
            base64(out, bytes);
            out.push(b'"');
        }
    }
    out.push(b'}');
}
