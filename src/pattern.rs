//! Key-name patterns (`enc.phi-patterns`, `enc.keyring-patterns`): `*` and `?` globs, with
//! the common shapes `prefix*` and plain names matched on bytes, since the command filter
//! tests a pattern for nearly every command.

use std::borrow::Cow;

use wildmatch::WildMatch;

/// One compiled pattern.
#[derive(Debug)]
pub enum KeyPattern {
    /// `literal*`: the name starts with the literal.
    Prefix(Vec<u8>),
    /// A name without wildcards.
    Exact(Vec<u8>),
    /// Anything else.
    Glob(WildMatch),
}

impl KeyPattern {
    pub fn new(pattern: &str) -> KeyPattern {
        let literal = |s: &str| !s.contains(['*', '?', char::REPLACEMENT_CHARACTER]);
        match pattern.strip_suffix('*') {
            Some(head) if literal(head) => KeyPattern::Prefix(head.as_bytes().to_vec()),
            _ if literal(pattern) => KeyPattern::Exact(pattern.as_bytes().to_vec()),
            _ => KeyPattern::Glob(WildMatch::new(pattern)),
        }
    }

    /// Whether `name` matches. A name that is not UTF-8 is matched with each invalid sequence
    /// read as U+FFFD.
    pub fn matches(&self, name: &[u8]) -> bool {
        match self {
            KeyPattern::Prefix(head) => name.starts_with(head),
            KeyPattern::Exact(whole) => name == whole.as_slice(),
            KeyPattern::Glob(glob) => {
                let text = match std::str::from_utf8(name) {
                    Ok(text) => Cow::Borrowed(text),
                    Err(_) => String::from_utf8_lossy(name),
                };
                glob.matches(&text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte paths answer what wildmatch answers on the (lossily decoded) name.
    #[test]
    fn fast_paths_agree_with_wildmatch() {
        let patterns = [
            "patient:*",
            "patient:",
            "*",
            "",
            "a*b",
            "p?t*",
            "*:ssn",
            "x**",
            "ü*",
            "exact",
        ];
        let names: [&[u8]; 12] = [
            b"patient:1",
            b"patient:",
            b"patient",
            b"Patient:1",
            b"",
            b"x",
            b"x*",
            b"a1b",
            b"pat",
            "\u{fc}ber".as_bytes(),
            b"patient:\xff",
            b"exact",
        ];
        for p in patterns {
            let reference = WildMatch::new(p);
            let ours = KeyPattern::new(p);
            for n in names {
                assert_eq!(
                    ours.matches(n),
                    reference.matches(&String::from_utf8_lossy(n)),
                    "pattern {p:?} name {n:?}"
                );
            }
        }
    }

    #[test]
    fn shapes() {
        assert!(matches!(
            KeyPattern::new("patient:*"),
            KeyPattern::Prefix(_)
        ));
        assert!(matches!(KeyPattern::new("patient:1"), KeyPattern::Exact(_)));
        assert!(matches!(KeyPattern::new("*:ssn"), KeyPattern::Glob(_)));
    }
}
