//! Attributes in OTLP/JSON: ``KeyValue`` lists and ``AnyValue`` objects, written from their bytes.

use crate::anyvalue::split_key_value;
use crate::jsonwrite::{base64, comma, double, string, Members};
use crate::wire::{Field, Reader, Result};

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

/// A JSON array of ``{"key": …, "value": …}`` objects.
fn key_value_list(out: &mut Vec<u8>, items: &[&[u8]]) -> Result<()> {
    out.push(b'[');
    let mut first = true;
    for item in items {
        comma(out, &mut first);
        let (key, value) = split_key_value(item)?;
        out.extend_from_slice(b"{\"key\":");
        string(out, key);
        out.extend_from_slice(b",\"value\":");
        any_value(value, out)?;
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// One ``AnyValue`` as its JSON object.
fn any_value(buf: &[u8], out: &mut Vec<u8>) -> Result<()> {
    // The member in force: the last one present. An ``array_value`` or ``kvlist_value`` merges
    // with the same member before it, back to the last other member (protobuf concatenates their
    // items): ``run_start`` is the ordinal of the field where that run began.
    let (mut last, mut run_start, mut index): (Option<Field<'_>>, usize, usize) = (None, 0, 0);
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        if (1..=7).contains(&field.number) {
            let merges = matches!(field.number, 5 | 6)
                && last.is_some_and(|last| last.number == field.number);
            if !merges {
                run_start = index;
            }
            last = Some(field);
        }
        index += 1;
    }
    let Some(field) = last else {
        out.extend_from_slice(b"{}");
        return Ok(());
    };
    match field.number {
        1 => {
            out.extend_from_slice(b"{\"stringValue\":");
            string(out, field.text("string_value")?);
        }
        2 => out.extend_from_slice(if field.varint("bool")? != 0 {
            b"{\"boolValue\":true"
        } else {
            b"{\"boolValue\":false"
        }),
        3 => out.extend_from_slice(
            format!("{{\"intValue\":\"{}\"", field.varint("int")? as i64).as_bytes(),
        ),
        4 => {
            out.extend_from_slice(b"{\"doubleValue\":");
            double(out, f64::from_bits(field.fixed64("double")?));
        }
        5 => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            let mut first = true;
            for_each_merged(buf, run_start, 5, |part| {
                let mut reader = Reader::new(part.bytes("array")?);
                while let Some(item) = reader.next()? {
                    if item.number == 1 {
                        comma(out, &mut first);
                        any_value(item.bytes("array item")?, out)?;
                    }
                }
                Ok(())
            })?;
            out.extend_from_slice(b"]}");
        }
        6 => {
            out.extend_from_slice(b"{\"kvlistValue\":{\"values\":");
            let mut items = Vec::new();
            for_each_merged(buf, run_start, 6, |part| {
                let mut reader = Reader::new(part.bytes("kvlist")?);
                while let Some(item) = reader.next()? {
                    if item.number == 1 {
                        items.push(item.bytes("kvlist item")?);
                    }
                }
                Ok(())
            })?;
            key_value_list(out, &items)?;
            out.push(b'}');
        }
        _ => {
            out.extend_from_slice(b"{\"bytesValue\":\"");
            base64(out, field.bytes("bytes")?);
            out.push(b'"');
        }
    }
    out.push(b'}');
    Ok(())
}

/// Calls ``each`` with every field numbered ``number`` from the field ordinal ``start`` on: the
/// parts of one merged ``AnyValue`` member.
fn for_each_merged<'a>(
    buf: &'a [u8],
    start: usize,
    number: u32,
    mut each: impl FnMut(Field<'a>) -> Result<()>,
) -> Result<()> {
    let mut reader = Reader::new(buf);
    let mut index = 0;
    while let Some(field) = reader.next()? {
        if index >= start && field.number == number {
            each(field)?;
        }
        index += 1;
    }
    Ok(())
}
