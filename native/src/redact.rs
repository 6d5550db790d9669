//! Redaction: the scrubbers configured in Python (``processor/redaction.py``), applied in order.
//!
//! Each scrubber is a regular expression (Python ``re`` syntax, look-around included, run by
//! ``fancy-regex``), an optional validator (Luhn, IP address, phone digit count) and a marker.
//! One pass of a ``RegexSet`` over *relaxations* of every pattern (look-around and word boundaries
//! dropped: each matches wherever its exact pattern does) tells which scrubbers can match at all;
//! only those run.
//! Results are remembered (bounded by bytes) so the same text is scrubbed once for the Loki
//! line, the Tempo span and the local files alike.

use std::sync::{Arc, Mutex};

use fancy_regex::Regex as ExactRegex;
use regex::RegexSet;

use crate::memo::Memo;
use crate::relax::relax;
pub use crate::validate::Validator;

/// One scrubber as configured.
pub struct ScrubberSpec {
    pub name: String,
    pub pattern: String,
    pub validator: Validator,
    pub marker: String,
}

struct Scrubber {
    name: String,
    exact: ExactRegex,
    /// ``\G(?:(?:pattern)()|)``: the exact pattern tried at one position only. When it fails
    /// there the empty alternative ends the search at once (without it the engine would go on to
    /// every later position of the text, each failing at ``\G``); the empty group appended to the
    /// pattern (``hit``, numbered after all of the pattern's own) tells which branch matched.
    anchored: ExactRegex,
    hit: usize,
    /// The relaxed pattern on the linear-time engine: it finds where the exact one may match.
    loose: Option<regex::Regex>,
    validator: Validator,
    marker: String,
    secret_group: bool,
}

/// A scrub went wrong (e.g. the backtracking limit); the text must be dropped, not sent raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubFailed(pub String);

pub type Counts = Vec<(usize, u32)>;
pub type Remembered = Arc<(String, Counts)>;

pub struct Redactor {
    scrubbers: Vec<Scrubber>,
    /// Relaxed patterns, one per scrubber in ``relaxed_of`` order.
    set: Option<RegexSet>,
    /// For each scrubber, its index in ``set`` (``None``: no relaxation, always a candidate).
    relaxed_of: Vec<Option<usize>>,
    memo: Mutex<Memo>,
}

impl Redactor {
    pub fn new(specs: Vec<ScrubberSpec>, memo_bytes: usize) -> Result<Self, String> {
        let mut scrubbers = Vec::with_capacity(specs.len());
        let mut relaxed = Vec::new();
        let mut relaxed_of = Vec::new();
        for spec in specs {
            let exact =
                ExactRegex::new(&spec.pattern).map_err(|e| format!("{}: {e}", spec.name))?;
            let secret_group = exact.capture_names().any(|name| name == Some("secret"));
            let anchored = ExactRegex::new(&format!("\\G(?:(?:{})()|)", spec.pattern))
                .map_err(|e| format!("{}: {e}", spec.name))?;
            let hit = anchored.captures_len() - 1;
            let relaxed_pattern = relax(&spec.pattern);
            let loose = regex::Regex::new(&relaxed_pattern).ok();
            if loose.is_some() {
                relaxed_of.push(Some(relaxed.len()));
                relaxed.push(relaxed_pattern);
            } else {
                relaxed_of.push(None);
            }
            scrubbers.push(Scrubber {
                name: spec.name,
                exact,
                anchored,
                hit,
                loose,
                validator: spec.validator,
                marker: spec.marker,
                secret_group,
            });
        }
        let set = if relaxed.is_empty() {
            None
        } else {
            Some(RegexSet::new(&relaxed).map_err(|e| format!("prefilter: {e}"))?)
        };
        Ok(Redactor {
            scrubbers,
            set,
            relaxed_of,
            memo: Mutex::new(Memo::new(memo_bytes)),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.scrubbers.is_empty()
    }

    fn candidates(&self, text: &str) -> Vec<bool> {
        let matched = self.set.as_ref().map(|set| set.matches(text));
        self.relaxed_of
            .iter()
            .map(|slot| match (slot, &matched) {
                (Some(index), Some(found)) => found.matched(*index),
                _ => true,
            })
            .collect()
    }

    /// ``text`` with every match replaced, and how many matches each scrubber (by index) made.
    pub fn scrub(&self, text: &str) -> Result<Remembered, ScrubFailed> {
        if self.scrubbers.is_empty() {
            return Ok(Arc::new((text.to_owned(), Vec::new())));
        }
        let key = {
            let mut memo = self.memo.lock().expect("memo lock");
            let key = memo.key(text);
            if let Some(found) = memo.get(&key, text) {
                return Ok(found);
            }
            key
        };
        let result = Arc::new(self.scrub_fresh(text)?);
        self.memo
            .lock()
            .expect("memo lock")
            .put(&key, text, result.clone());
        Ok(result)
    }

    fn scrub_fresh(&self, text: &str) -> Result<(String, Counts), ScrubFailed> {
        let mut current = text.to_owned();
        let mut counts = Vec::new();
        let mut candidates = self.candidates(&current);
        for (index, scrubber) in self.scrubbers.iter().enumerate() {
            if !candidates[index] {
                continue;
            }
            let (next, count) = scrubber.apply(&current)?;
            if count > 0 {
                counts.push((index, count));
                current = next;
                // A replacement changes the text the later scrubbers see.
                candidates = self.candidates(&current);
            }
        }
        Ok((current, counts))
    }

    pub fn name(&self, index: usize) -> &str {
        &self.scrubbers[index].name
    }
}

impl Scrubber {
    /// The matches Python's ``re.sub`` would make, leftmost first, non-overlapping: the loose
    /// pattern (a superset: wherever the exact one matches, it matches at the same start) jumps
    /// to the next possible start, and the backtracking engine only checks that one position.
    fn matches<'t>(&self, text: &'t str) -> Result<Vec<fancy_regex::Captures<'t>>, ScrubFailed> {
        let fail = |e: fancy_regex::Error| ScrubFailed(format!("{}: {e}", self.name));
        let Some(loose) = &self.loose else {
            return self
                .exact
                .captures_iter(text)
                .map(|c| c.map_err(fail))
                .collect();
        };
        let mut found = Vec::new();
        let mut pos = 0;
        let mut attempts = 0;
        while pos <= text.len() {
            if attempts == MAX_ANCHORED_ATTEMPTS {
                // Each attempt restarts the loose search just past the last one, which may read
                // the same stretch again (a long loose match); past a few, one forward pass of
                // the exact pattern is cheaper.
                while pos <= text.len() {
                    let Some(captures) = self.exact.captures_from_pos(text, pos).map_err(fail)?
                    else {
                        break;
                    };
                    let (start, end) = captures
                        .get(0)
                        .map(|m| (m.start(), m.end()))
                        .expect("group 0");
                    pos = resume_at(text, start, end);
                    found.push(captures);
                }
                break;
            }
            let Some(candidate) = loose.find_at(text, pos) else {
                break;
            };
            let start = candidate.start();
            attempts += 1;
            match self.anchored.captures_from_pos(text, start).map_err(fail)? {
                Some(captures)
                    if captures.get(self.hit).is_some()
                        && captures.get(0).is_some_and(|m| m.start() == start) =>
                {
                    let end = captures.get(0).expect("group 0").end();
                    pos = resume_at(text, start, end);
                    found.push(captures);
                }
                _ => pos = next_char(text, start),
            }
        }
        Ok(found)
    }

    fn apply(&self, text: &str) -> Result<(String, u32), ScrubFailed> {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut count = 0;
        for captures in self.matches(text)? {
            let whole = captures.get(0).expect("group 0");
            if !self.validator.accepts(whole.as_str()) {
                continue;
            }
            count += 1;
            let (start, end) = match captures.name("secret").filter(|_| self.secret_group) {
                Some(secret) => (secret.start(), secret.end()),
                None => (whole.start(), whole.end()),
            };
            out.push_str(&text[last..start]);
            out.push_str(&self.marker);
            last = end;
        }
        if count == 0 {
            return Ok((String::new(), 0));
        }
        out.push_str(&text[last..]);
        Ok((out, count))
    }
}

const MAX_ANCHORED_ATTEMPTS: u32 = 16;

/// Where the search goes on after a match of ``start..end``: its end, or one character further
/// when it was empty (as ``re.sub`` does).
fn resume_at(text: &str, start: usize, end: usize) -> usize {
    if end > start {
        end
    } else {
        next_char(text, start)
    }
}

fn next_char(text: &str, at: usize) -> usize {
    at + text[at..].chars().next().map_or(1, char::len_utf8)
}

/// Why a user pattern cannot be used, or ``None``.
pub fn pattern_problem(pattern: &str) -> Option<String> {
    match ExactRegex::new(pattern) {
        Err(error) => Some(error.to_string()),
        Ok(compiled) => match compiled.is_match("") {
            Ok(true) => Some("matches the empty string".into()),
            Ok(false) => None,
            Err(error) => Some(error.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(specs: &[(&str, &str, Validator)]) -> Redactor {
        let specs = specs
            .iter()
            .map(|(name, pattern, validator)| ScrubberSpec {
                name: (*name).into(),
                pattern: (*pattern).into(),
                validator: *validator,
                marker: format!("[REDACTED:{name}]"),
            })
            .collect();
        Redactor::new(specs, 1 << 20).unwrap()
    }

    #[test]
    fn luhn_checked_cards_only() {
        let r = redactor(&[(
            "card",
            r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?!\d)",
            Validator::Luhn,
        )]);
        let scrubbed = r
            .scrub("pay 4111 1111 1111 1111 not 4111 1111 1111 1112")
            .unwrap();
        assert_eq!(scrubbed.0, "pay [REDACTED:card] not 4111 1111 1111 1112");
        assert_eq!(scrubbed.1, vec![(0, 1)]);
    }

    #[test]
    fn secret_group_replaces_only_the_secret() {
        let r = redactor(&[(
            "bearer",
            r"(?i)\b(?:bearer)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)",
            Validator::None,
        )]);
        assert_eq!(
            r.scrub("Authorization: Bearer abcdefghijklmnopqrst")
                .unwrap()
                .0,
            "Authorization: Bearer [REDACTED:bearer]"
        );
    }

    #[test]
    fn remembered_results_are_the_same() {
        let r = redactor(&[("email", r"[a-z]+@[a-z]+\.com", Validator::None)]);
        let first = r.scrub("mail bob@example.com").unwrap();
        let second = r.scrub("mail bob@example.com").unwrap();
        assert_eq!(first, second);
        assert_eq!(first.0, "mail [REDACTED:email]");
    }

    #[test]
    fn text_without_candidates_is_unchanged() {
        let r = redactor(&[("email", r"[a-z]+@[a-z]+\.com", Validator::None)]);
        let scrubbed = r.scrub("nothing here").unwrap();
        assert_eq!(scrubbed.0, "nothing here");
        assert!(scrubbed.1.is_empty());
    }

    #[test]
    fn bad_patterns_are_reported() {
        assert!(pattern_problem("(").is_some());
        assert!(pattern_problem("a*").is_some());
        assert!(pattern_problem("ORD-[0-9]{8}").is_none());
    }
}
