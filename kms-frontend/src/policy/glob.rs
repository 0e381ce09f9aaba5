//! The wildcard match of IAM policies: `*` matches any run of characters
//! (also none), `?` exactly one; everything else literally. Used for Action
//! patterns (on lower-cased text), Resource and `StringLike`. Iterative with
//! one backtrack point, so a pattern costs O(len(pattern) * len(text)) at
//! worst and never recurses.

/// Whether `text` matches `pattern`.
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches("*", ""));
        assert!(matches("*", "kms:encrypt"));
        assert!(matches("kms:*", "kms:encrypt"));
        assert!(matches(
            "kms:generatedatakey*",
            "kms:generatedatakeywithoutplaintext"
        ));
        assert!(matches("kms:*grant*", "kms:listretirablegrants"));
        assert!(matches("kms:re?ncrypt*", "kms:reencryptfrom"));
        assert!(!matches("kms:encrypt", "kms:encrypted"));
        assert!(!matches("kms:e*t", "kms:decrypt"));
        assert!(!matches("a?", "a"));
        assert!(matches("a**b", "ab"));
        assert!(!matches("", "x"));
        assert!(matches(&"*a".repeat(50), &"a".repeat(60)));
    }
}
