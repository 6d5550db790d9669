//! Protobuf wire format: a zero-copy field reader and the few writers the splicer needs.
//!
//! Only what OTLP uses: varint, 64-bit, length-delimited and 32-bit fields. Groups (wire types 3
//! and 4) are deprecated and never appear in OTLP; they are rejected as malformed.

use std::fmt;

/// A body that is not a well-formed protobuf message of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T> = std::result::Result<T, DecodeError>;

pub fn error<T>(message: impl Into<String>) -> Result<T> {
    Err(DecodeError(message.into()))
}

/// The payload of one field, borrowed from the message bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// One field of a message: its number, payload, and where its bytes (tag included) lie.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// The payload of a length-delimited field, or a decode error naming ``what``.
    pub fn bytes(&self, what: &str) -> Result<&'a [u8]> {
        match self.value {
            Value::Bytes(bytes) => Ok(bytes),
            _ => error(format!("{what}: expected a length-delimited field")),
        }
    }

    /// A length-delimited field that must hold UTF-8 text.
    pub fn text(&self, what: &str) -> Result<&'a str> {
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes)
            .map_err(|_| DecodeError(format!("{what}: string is not valid UTF-8")))
    }

    pub fn varint(&self, what: &str) -> Result<u64> {
        match self.value {
            Value::Varint(value) => Ok(value),
            _ => error(format!("{what}: expected a varint field")),
        }
    }

    pub fn fixed64(&self, what: &str) -> Result<u64> {
        match self.value {
            Value::Fixed64(value) => Ok(value),
            _ => error(format!("{what}: expected a 64-bit field")),
        }
    }

    pub fn fixed32(&self, what: &str) -> Result<u32> {
        match self.value {
            Value::Fixed32(value) => Ok(value),
            _ => error(format!("{what}: expected a 32-bit field")),
        }
    }
}

/// Iterates the fields of one message.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return error(format!("truncated varint at byte {}", self.pos));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return error("varint overflows 64 bits");
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        error("varint longer than 10 bytes")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let Some(end) = end else {
            return error(format!(
                "field at byte {} is truncated ({} of {} bytes)",
                self.pos,
                self.buf.len() - self.pos,
                n
            ));
        };
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    /// The next field, ``None`` at the end of the message.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Field<'a>>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let start = self.pos;
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return error(format!("invalid field number {number} at byte {start}"));
        }
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let bytes = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
            }
            2 => {
                let length = self.varint()?;
                let length =
                    usize::try_from(length).map_err(|_| DecodeError("length overflows".into()))?;
                Value::Bytes(self.take(length)?)
            }
            5 => {
                let bytes = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
            }
            other => return error(format!("unsupported wire type {other} at byte {start}")),
        };
        Ok(Some(Field {
            number: number as u32,
            value,
            raw: &self.buf[start..self.pos],
        }))
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Tag and length of a length-delimited field, then its bytes.
pub fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, u64::from(number) << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub fn put_tag(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, u64::from(number) << 3 | u64::from(wire_type));
}

/// Writes a length-delimited field whose body is produced by ``body`` straight into ``out``
/// (the body is built after a placeholder, then moved right by the size of its length prefix).
pub fn put_nested(out: &mut Vec<u8>, number: u32, body: impl FnOnce(&mut Vec<u8>)) {
    put_varint(out, u64::from(number) << 3 | 2);
    let start = out.len();
    body(out);
    let length = out.len() - start;
    let mut prefix = Vec::with_capacity(10);
    put_varint(&mut prefix, length as u64);
    out.splice(start..start, prefix);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_wire_type() {
        let mut buf = Vec::new();
        put_tag(&mut buf, 1, 0);
        put_varint(&mut buf, 300);
        put_tag(&mut buf, 2, 1);
        buf.extend_from_slice(&7u64.to_le_bytes());
        put_bytes(&mut buf, 3, b"abc");
        put_tag(&mut buf, 4, 5);
        buf.extend_from_slice(&9u32.to_le_bytes());
        let mut reader = Reader::new(&buf);
        assert_eq!(reader.next().unwrap().unwrap().value, Value::Varint(300));
        assert_eq!(reader.next().unwrap().unwrap().value, Value::Fixed64(7));
        assert_eq!(reader.next().unwrap().unwrap().value, Value::Bytes(b"abc"));
        assert_eq!(reader.next().unwrap().unwrap().value, Value::Fixed32(9));
        assert!(reader.next().unwrap().is_none());
    }

    #[test]
    fn rejects_truncation_and_bad_tags() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, 3, b"abcdef");
        assert!(Reader::new(&buf[..buf.len() - 1]).next().is_err());
        assert!(Reader::new(&[0x00]).next().is_err()); // field number 0
        assert!(Reader::new(&[0x0b]).next().is_err()); // group start
        assert!(Reader::new(&[0x08, 0x80]).next().is_err()); // truncated varint
    }

    #[test]
    fn nested_length_is_rewritten() {
        let mut out = Vec::new();
        put_nested(&mut out, 1, |body| {
            body.extend(std::iter::repeat_n(7u8, 200))
        });
        let field = Reader::new(&out).next().unwrap().unwrap();
        assert_eq!(field.bytes("x").unwrap().len(), 200);
    }
}
