//! Relaxed patterns for the prefilter: a scrubber's pattern with what the ``RegexSet`` cannot run
//! (fast) taken out, so that it matches wherever the exact pattern does.

/// ``pattern`` without its look-around groups and word-boundary assertions: a pattern that matches
/// wherever the original does. Both are zero-width (dropping one only widens what matches) and
/// neither can carry a quantifier (``fancy-regex`` refuses one), so nothing else changes meaning.
/// Word boundaries (``\b \B \< \>``) go because they are Unicode ones: the lazy DFA cannot
/// decide them on non-ASCII text and the whole set would fall back to a ~75x slower engine.
pub fn relax(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len());
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c == '\\' {
            if matches!(chars.get(index + 1), Some('b' | 'B' | '<' | '>')) {
                index += 2;
                continue;
            }
            out.push(c);
            if let Some(&next) = chars.get(index + 1) {
                out.push(next);
            }
            index += 2;
            continue;
        }
        if c == '[' {
            let end = class_end(&chars, index);
            out.extend(&chars[index..end]);
            index = end;
            continue;
        }
        if c == '(' && is_lookaround(&chars[index..]) {
            index = group_end(&chars, index);
            continue;
        }
        out.push(c);
        index += 1;
    }
    out
}

fn is_lookaround(rest: &[char]) -> bool {
    let head: String = rest.iter().take(4).collect();
    head.starts_with("(?=")
        || head.starts_with("(?!")
        || head.starts_with("(?<=")
        || head.starts_with("(?<!")
}

/// Index just past the character class starting at ``start``.
fn class_end(chars: &[char], start: usize) -> usize {
    let mut index = start + 1;
    if chars.get(index) == Some(&'^') {
        index += 1;
    }
    if chars.get(index) == Some(&']') {
        index += 1;
    }
    while index < chars.len() {
        match chars[index] {
            '\\' => index += 2,
            ']' => return index + 1,
            _ => index += 1,
        }
    }
    chars.len()
}

/// Index just past the group opening at ``start``.
fn group_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut index = start;
    while index < chars.len() {
        match chars[index] {
            '\\' => {
                index += 2;
                continue;
            }
            '[' => {
                index = class_end(chars, index);
                continue;
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
        index += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::relax;

    #[test]
    fn relaxing_drops_lookaround() {
        assert_eq!(
            relax(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?!\d)"),
            r"\d(?:[ -]?\d){12,18}"
        );
        assert_eq!(relax(r"(?<![(\]])a[)(]b(?=\))"), r"a[)(]b");
        assert_eq!(relax(r"(?P<secret>x)"), r"(?P<secret>x)");
    }

    #[test]
    fn relaxing_drops_word_boundaries_outside_classes() {
        assert_eq!(
            relax(r"(?i)\b(?:bearer|token)\s+[\b]\Bx\<y\>"),
            r"(?i)(?:bearer|token)\s+[\b]xy"
        );
        assert_eq!(relax(r"\\b"), r"\\b");
    }
}
