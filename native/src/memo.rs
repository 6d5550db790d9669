//! The memory of scrub results (``redact.rs``), so the Loki line, the Tempo span and the local
//! files scrub one text once.
//!
//! Two generations, each bounded by bytes: when the young one is full it becomes the old one and
//! the previous old one is dropped (O(1), no per-entry bookkeeping). Entries are keyed by the
//! text's hash, computed once per look-up with the standard library's SipHash (keyed afresh per
//! process, so no one can aim collisions at it); each keeps its text to confirm a hit, and a text
//! the scrub left as it was is kept once, as its own result.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::redact::Remembered;

/// Texts longer than this are not remembered.
const MAX_REMEMBERED_TEXT: usize = 65_536;
/// What an entry costs besides its text, counted against the budget.
const ENTRY_OVERHEAD: usize = 64;

pub struct Memo {
    hasher: RandomState,
    young: Generation,
    old: Generation,
    young_bytes: usize,
    budget: usize,
}

type Generation = HashMap<u64, Entry, BuildHasherDefault<HashValue>>;

struct Entry {
    /// The text that was scrubbed; ``None`` when it is the result's text (nothing was replaced).
    source: Option<Box<str>>,
    result: Remembered,
}

impl Entry {
    fn is_for(&self, text: &str) -> bool {
        self.source.as_deref().unwrap_or(&self.result.0) == text
    }
}

/// A text's hash, computed by ``Memo::key`` for its ``get`` and the ``put`` after a miss.
pub struct Key(u64);

impl Memo {
    /// A memory holding up to about ``budget_bytes`` of texts and results.
    pub fn new(budget_bytes: usize) -> Self {
        Memo {
            hasher: RandomState::new(),
            young: Generation::default(),
            old: Generation::default(),
            young_bytes: 0,
            budget: budget_bytes / 2,
        }
    }

    pub fn key(&self, text: &str) -> Key {
        Key(self.hasher.hash_one(text))
    }

    /// The result remembered for ``text`` (``key`` its key), if any.
    pub fn get(&mut self, key: &Key, text: &str) -> Option<Remembered> {
        if let Some(entry) = self.young.get(&key.0).filter(|entry| entry.is_for(text)) {
            return Some(entry.result.clone());
        }
        let found = self.old.get(&key.0).filter(|entry| entry.is_for(text))?;
        let result = found.result.clone();
        self.put(key, text, result.clone());
        Some(result)
    }

    /// Remember ``result`` for ``text`` (``key`` its key).
    pub fn put(&mut self, key: &Key, text: &str, result: Remembered) {
        if text.len() > MAX_REMEMBERED_TEXT || self.budget == 0 {
            return;
        }
        let source = (result.0 != text).then(|| Box::from(text));
        let cost = text.len() + source.as_ref().map_or(0, |_| result.0.len()) + ENTRY_OVERHEAD;
        if self.young_bytes + cost > self.budget {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young_bytes += cost;
        self.young.insert(key.0, Entry { source, result });
    }
}

/// Hands a ``u64`` key through as its own hash: the keys are SipHash values already.
#[derive(Default)]
struct HashValue(u64);

impl Hasher for HashValue {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    /// Required by the trait; ``u64`` keys only ever call ``write_u64``.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn remember(memo: &mut Memo, text: &str, result: &str) {
        let key = memo.key(text);
        memo.put(&key, text, Arc::new((result.to_owned(), vec![(0, 1)])));
    }

    fn recall(memo: &mut Memo, text: &str) -> Option<String> {
        let key = memo.key(text);
        memo.get(&key, text).map(|found| found.0.clone())
    }

    #[test]
    fn changed_and_unchanged_texts_are_recalled() {
        let mut memo = Memo::new(1 << 20);
        remember(&mut memo, "mail bob@example.com", "mail [REDACTED:email]");
        remember(&mut memo, "nothing here", "nothing here");
        assert_eq!(
            recall(&mut memo, "mail bob@example.com").as_deref(),
            Some("mail [REDACTED:email]")
        );
        assert_eq!(
            recall(&mut memo, "nothing here").as_deref(),
            Some("nothing here")
        );
        assert_eq!(recall(&mut memo, "mail [REDACTED:email]"), None);
    }

    #[test]
    fn an_entry_under_the_same_key_answers_only_for_its_own_text() {
        let mut memo = Memo::new(1 << 20);
        let key = memo.key("first");
        memo.put(&key, "first", Arc::new(("one".to_owned(), Vec::new())));
        assert!(memo.get(&key, "second").is_none());
        assert!(memo.get(&key, "first").is_some());
    }

    #[test]
    fn a_text_is_forgotten_two_generations_on() {
        let mut memo = Memo::new(2 * (ENTRY_OVERHEAD + 10));
        remember(&mut memo, "aaaaaaaaaa", "aaaaaaaaaa");
        remember(&mut memo, "bbbbbbbbbb", "bbbbbbbbbb");
        remember(&mut memo, "cccccccccc", "cccccccccc");
        assert!(recall(&mut memo, "aaaaaaaaaa").is_none());
        assert!(recall(&mut memo, "bbbbbbbbbb").is_some());
        assert!(recall(&mut memo, "cccccccccc").is_some());
    }
}
