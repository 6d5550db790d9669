//! ``AnyValue`` and ``KeyValue`` (``opentelemetry/proto/common/v1/common.proto``): decoded into
//! values that borrow from the request, or only checked. Nesting is bounded at 64 levels.

use crate::wire::{error, Field, Reader, Result};

/// A decoded ``AnyValue``, borrowing its strings from the request.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyVal<'a> {
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Array(Vec<AnyVal<'a>>),
    KvList(Vec<(&'a str, AnyVal<'a>)>),
}

/// An attribute: its key and decoded value.
pub type Attr<'a> = (&'a str, AnyVal<'a>);

/// The key of a ``KeyValue`` and the bytes of its value (empty when absent).
///
/// A value given twice is refused: protobuf would merge the two ``AnyValue`` messages (both must
/// be valid, arrays concatenate), which no encoder writes and a zero-copy reader cannot follow.
pub fn split_key_value(buf: &[u8]) -> Result<(&str, &[u8])> {
    let (mut key, mut value): (&str, Option<&[u8]>) = ("", None);
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        match field.number {
            1 => key = field.text("attribute key")?,
            2 => {
                if value.is_some() {
                    return error("attribute value given twice in one KeyValue");
                }
                value = Some(field.bytes("attribute value")?);
            }
            _ => {}
        }
    }
    Ok((key, value.unwrap_or(&[])))
}

/// Validates a ``KeyValue`` without building its value.
pub fn check_key_value(buf: &[u8]) -> Result<()> {
    let (_, value) = split_key_value(buf)?;
    check_any_value(value)
}

/// Decodes an ``AnyValue`` as protobuf does: the last member of the oneof present wins, and an
/// ``array_value`` or ``kvlist_value`` given again after itself merges into it.
pub fn any_value(buf: &[u8]) -> Result<AnyVal<'_>> {
    any_value_depth(buf, 0)
}

fn any_value_depth(buf: &[u8], depth: u32) -> Result<AnyVal<'_>> {
    if depth > MAX_DEPTH {
        return error("attribute value nested deeper than 64 levels");
    }
    let mut value = AnyVal::Empty;
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        value = match (field.number, value) {
            (1, _) => AnyVal::Str(field.text("string_value")?),
            (2, _) => AnyVal::Bool(field.varint("bool_value")? != 0),
            (3, _) => AnyVal::Int(field.varint("int_value")? as i64),
            (4, _) => AnyVal::Double(f64::from_bits(field.fixed64("double_value")?)),
            // A message member given again merges into the one in force: the items concatenate.
            (5, AnyVal::Array(mut items)) => {
                items.extend(array(field.bytes("array_value")?, depth)?);
                AnyVal::Array(items)
            }
            (5, _) => AnyVal::Array(array(field.bytes("array_value")?, depth)?),
            (6, AnyVal::KvList(mut items)) => {
                items.extend(kv_list(field.bytes("kvlist_value")?, depth)?);
                AnyVal::KvList(items)
            }
            (6, _) => AnyVal::KvList(kv_list(field.bytes("kvlist_value")?, depth)?),
            (7, _) => AnyVal::Bytes(field.bytes("bytes_value")?),
            (_, value) => value,
        };
    }
    Ok(value)
}

fn array(buf: &[u8], depth: u32) -> Result<Vec<AnyVal<'_>>> {
    let mut values = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        if field.number == 1 {
            values.push(any_value_depth(field.bytes("array value")?, depth + 1)?);
        }
    }
    Ok(values)
}

fn kv_list(buf: &[u8], depth: u32) -> Result<Vec<(&str, AnyVal<'_>)>> {
    let mut values = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        if field.number == 1 {
            let (key, value) = split_key_value(field.bytes("kvlist value")?)?;
            values.push((key, any_value_depth(value, depth + 1)?));
        }
    }
    Ok(values)
}

/// Validates an ``AnyValue`` without building it.
pub fn check_any_value(buf: &[u8]) -> Result<()> {
    check_any_depth(buf, 0)
}

const MAX_DEPTH: u32 = 64;

fn check_any_depth(buf: &[u8], depth: u32) -> Result<()> {
    if depth > MAX_DEPTH {
        return error("attribute value nested deeper than 64 levels");
    }
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next()? {
        check_any_field(&field, depth)?;
    }
    Ok(())
}

fn check_any_field(field: &Field<'_>, depth: u32) -> Result<()> {
    match field.number {
        1 => {
            field.text("string_value")?;
        }
        2 | 3 => {
            field.varint("bool/int value")?;
        }
        4 => {
            field.fixed64("double_value")?;
        }
        5 | 6 => {
            let mut reader = Reader::new(field.bytes("array/kvlist value")?);
            while let Some(item) = reader.next()? {
                if item.number != 1 {
                    continue;
                }
                let item = item.bytes("array/kvlist item")?;
                if field.number == 5 {
                    check_any_depth(item, depth + 1)?;
                } else {
                    let (_, value) = split_key_value(item)?;
                    check_any_depth(value, depth + 1)?;
                }
            }
        }
        7 => {
            field.bytes("bytes_value")?;
        }
        _ => {}
    }
    Ok(())
}
