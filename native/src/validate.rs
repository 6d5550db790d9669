//! The validators a scrubber's match must pass: Luhn (card numbers), an IP address, a phone
//! number's digit count. Digits are every Unicode ``Nd`` digit, as the patterns' ``\\d`` knows them.

use std::sync::LazyLock;

/// A check a scrubber's match must pass before it is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    None,
    Luhn,
    Ip,
    Phone,
}

impl Validator {
    /// The validator named in the config (``""`` for none).
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "" => Ok(Validator::None),
            "luhn" => Ok(Validator::Luhn),
            "ip" => Ok(Validator::Ip),
            "phone" => Ok(Validator::Phone),
            other => Err(format!("unknown validator {other:?}")),
        }
    }

    /// Whether ``candidate`` (a whole match) passes.
    pub fn accepts(self, candidate: &str) -> bool {
        match self {
            Validator::None => true,
            Validator::Luhn => luhn(candidate),
            Validator::Ip => candidate.parse::<std::net::IpAddr>().is_ok(),
            Validator::Phone => (9..=15).contains(
                &candidate
                    .chars()
                    .filter(|c| decimal_digit(*c).is_some())
                    .count(),
            ),
        }
    }
}

/// The value of a decimal digit as the patterns' ``\\d`` (and Python's ``re``) know them: any
/// Unicode ``Nd`` character, so a card or phone number in Arabic-Indic or Devanagari digits is
/// validated like an ASCII one.
fn decimal_digit(c: char) -> Option<u32> {
    if c.is_ascii() {
        return c.to_digit(10);
    }
    static DIGIT: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"^\d$").expect("a valid pattern"));
    let is_digit = |c: char| DIGIT.is_match(c.encode_utf8(&mut [0; 4]));
    if !is_digit(c) {
        return None;
    }
    // Unicode encodes Nd digits in runs of ten, 0 to 9 (a stability guarantee); runs that touch
    // (the mathematical digits) make blocks of whole runs: the value is the offset in the block.
    let mut start = u32::from(c);
    while let Some(previous) = char::from_u32(start - 1) {
        if !is_digit(previous) {
            break;
        }
        start -= 1;
    }
    Some((u32::from(c) - start) % 10)
}

fn luhn(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(decimal_digit).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let total: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &digit)| {
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    total.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_every_script_have_their_values() {
        assert_eq!(decimal_digit('7'), Some(7));
        assert_eq!(decimal_digit('\u{0669}'), Some(9)); // ARABIC-INDIC DIGIT NINE
        assert_eq!(decimal_digit('\u{06F0}'), Some(0)); // EXTENDED ARABIC-INDIC DIGIT ZERO
        assert_eq!(decimal_digit('\u{096A}'), Some(4)); // DEVANAGARI DIGIT FOUR
        assert_eq!(decimal_digit('\u{FF13}'), Some(3)); // FULLWIDTH DIGIT THREE
        assert_eq!(decimal_digit('\u{1D7D9}'), Some(1)); // MATHEMATICAL DOUBLE-STRUCK DIGIT ONE
        assert_eq!(decimal_digit('\u{1D7FF}'), Some(9)); // the last of five touching runs
        assert_eq!(decimal_digit('\u{00B2}'), None); // SUPERSCRIPT TWO is No, not Nd
        assert_eq!(decimal_digit('\u{2164}'), None); // ROMAN NUMERAL FIVE is Nl
        assert_eq!(decimal_digit('x'), None);
        let arabic: String = "4111111111111111"
            .chars()
            .map(|c| char::from_u32(0x0660 + c.to_digit(10).unwrap()).unwrap())
            .collect();
        assert!(luhn(&arabic));
        assert!(Validator::Phone.accepts(
            "+\u{0669}\u{0667}\u{0661}\u{0665}\u{0660}\u{0661}\u{0662}\u{0663}\u{0664}\u{0665}"
        ));
    }
}
