//! JSON's primitives as OTLP/JSON writes them: members, strings (escaped, UTF-8 kept), doubles
//! (``NaN`` and the infinities as strings, as protobuf's JSON mapping does), hex and base64.

/// A comma before every item but the first.
pub fn comma(out: &mut Vec<u8>, first: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
}

/// Members of a JSON object, comma-separated.
pub struct Members {
    first: bool,
}

impl Members {
    /// An object with no member written yet.
    pub fn first() -> Self {
        Members { first: true }
    }

    /// An object whose first member was written by hand: every key from here on gets a comma.
    pub fn after_first() -> Self {
        Members { first: false }
    }

    /// Write ``"name":`` (after a comma unless it is the first).
    pub fn key(&mut self, out: &mut Vec<u8>, name: &str) {
        comma(out, &mut self.first);
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    }
}

/// A double as protobuf's JSON mapping writes it (non-finite values as strings).
pub fn double(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
    } else {
        let text = if value != 0.0 && !(1e-7..1e21).contains(&value.abs()) {
            format!("{value:e}") // Rust's plain form has no exponent: 1e-300 would be 300 digits
        } else {
            value.to_string()
        };
        out.extend_from_slice(text.as_bytes());
        if !text.contains(['.', 'e', 'E']) {
            out.extend_from_slice(b".0");
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes as a quoted lowercase hex string (trace and span ids).
pub fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for byte in bytes {
        out.push(HEX[(byte >> 4) as usize]);
        out.push(HEX[(byte & 15) as usize]);
    }
    out.push(b'"');
}

/// A JSON string: quotes, backslashes and control characters escaped; other UTF-8 kept as is.
/// Runs of eight bytes that need no escape are skipped a word at a time.
pub fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let (mut start, mut index) = (0, 0);
    while index < bytes.len() {
        if let Some(word) = bytes.get(index..index + 8) {
            if !needs_escape(u64::from_le_bytes(word.try_into().expect("8 bytes"))) {
                index += 8;
                continue;
            }
        }
        let byte = bytes[index];
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => {
                index += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{byte:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        index += 1;
        start = index;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the eight bytes of ``word`` is a control character, ``"`` or ``\\`` (exact: the
/// classic has-less-than / has-zero-byte tests, whose borrows only ever follow a true hit).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    control
        | zero_byte(word ^ (ONES * u64::from(b'"')))
        | zero_byte(word ^ (ONES * u64::from(b'\\')))
        != 0
}

/// Bytes as standard base64 with padding (``bytes_value``).
pub fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(TABLE[(n >> 18) as usize & 63]);
        out.push(TABLE[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            TABLE[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            TABLE[n as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::string;

    /// The escaping rules one byte at a time, as JSON states them.
    fn reference(text: &str) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &byte in text.as_bytes() {
            match byte {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                0..=0x1f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
                _ => out.push(byte),
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn every_escape_at_every_offset_of_a_word_matches_the_byte_rule() {
        let specials = [
            "\"", "\\", "\n", "\r", "\t", "\u{8}", "\u{c}", "\u{0}", "\u{1f}", "é", "\u{7f}", " ",
            "!", "#", "]",
        ];
        for length in 0..20 {
            for at in 0..length {
                for special in specials {
                    let mut text = "abcdefghijklmnopqrst"[..length].to_owned();
                    text.insert_str(at, special);
                    let mut out = Vec::new();
                    string(&mut out, &text);
                    assert_eq!(out, reference(&text), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn bytes_next_to_the_escaped_ones_are_not_taken_for_them() {
        // 0x21 ('!', after '"'), 0x5b/0x5d (around '\\'), 0x20 (after the controls), 0xa2/0xdc (UTF-8
        // continuation bytes with the low bits of '"' and '\\').
        let text = "!!!!!!!![[[[]]]]        \u{a2}\u{dc}\u{a2}\u{dc}\u{a2}\u{dc}\u{a2}\u{dc}";
        let mut out = Vec::new();
        string(&mut out, text);
        assert_eq!(out, reference(text));
    }
}
