//! The options of `ENC.SET` (and of `SET`, which the plaintext guard reads), parsed into what
//! they mean. They mean what they mean for `SET`. Time comes in as an argument.

use crate::keyring::KeyringName;

/// Why options were refused; the adapter turns each into the reply `SET` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionError {
    /// An unknown, repeated, conflicting or incomplete option.
    Syntax,
    /// A number that is not a decimal 64-bit integer.
    NotInteger,
    /// An expire time that is not positive, or overflows.
    InvalidExpire,
    /// A keyring name that is not valid.
    InvalidKeyringName,
}

/// When to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No condition.
    Always,
    /// `NX`: only if the key does not exist.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// What happens to the key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No option: any TTL is removed.
    Clear,
    /// `KEEPTTL`.
    Keep,
    /// `EX` / `PX`: milliseconds from now.
    In(i64),
    /// `EXAT` / `PXAT`: Unix time in milliseconds.
    At(i64),
}

/// Everything after `ENC.SET key value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOptions {
    /// `NX` / `XX`.
    pub condition: Condition,
    /// `GET`: reply with the old value.
    pub get: bool,
    /// What happens to the time to live.
    pub expiry: Expiry,
    /// `PHI` (`ENC.SET` only).
    pub phi: bool,
    /// `KEYRING name` (`ENC.SET` only).
    pub keyring: Option<KeyringName>,
}

impl SetOptions {
    /// Parses the options (the words after key and value); `now_ms` is the server's clock, used to reject relative times that
    /// would overflow, as `SET` does.
    pub fn parse(args: &[&[u8]], now_ms: i64) -> Result<SetOptions, OptionError> {
        let mut opts = SetOptions {
            condition: Condition::Always,
            get: false,
            expiry: Expiry::Clear,
            phi: false,
            keyring: None,
        };
        let mut expiry_given = false;
        let mut i = 0;
        while i < args.len() {
            let word = args[i].to_ascii_uppercase();
            let next = args.get(i + 1);
            match word.as_slice() {
                b"NX" | b"XX" => {
                    if opts.condition != Condition::Always {
                        return Err(OptionError::Syntax);
                    }
                    opts.condition = if word == b"NX" {
                        Condition::IfAbsent
                    } else {
                        Condition::IfPresent
                    };
                }
                b"GET" => opts.get = true,
                b"PHI" => opts.phi = true,
                b"KEEPTTL" => {
                    if expiry_given {
                        return Err(OptionError::Syntax);
                    }
                    expiry_given = true;
                    opts.expiry = Expiry::Keep;
                }
                b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                    let Some(value) = next else {
                        return Err(OptionError::Syntax);
                    };
                    if expiry_given {
                        return Err(OptionError::Syntax);
                    }
                    expiry_given = true;
                    opts.expiry = parse_expiry(&word, value, now_ms)?;
                    i += 1;
                }
                b"KEYRING" => {
                    let Some(name) = next else {
                        return Err(OptionError::Syntax);
                    };
                    if opts.keyring.is_some() {
                        return Err(OptionError::Syntax);
                    }
                    opts.keyring = Some(
                        KeyringName::parse(name).map_err(|_| OptionError::InvalidKeyringName)?,
                    );
                    i += 1;
                }
                _ => return Err(OptionError::Syntax),
            }
            i += 1;
        }
        Ok(opts)
    }
}

/// Parses a decimal integer as Redis does: optional minus sign, no spaces, no plus sign.
pub fn parse_i64(bytes: &[u8]) -> Result<i64, OptionError> {
    let text = std::str::from_utf8(bytes).map_err(|_| OptionError::NotInteger)?;
    if text.starts_with('+') || text.len() > 20 {
        return Err(OptionError::NotInteger);
    }
    text.parse::<i64>().map_err(|_| OptionError::NotInteger)
}

fn parse_expiry(word: &[u8], value: &[u8], now_ms: i64) -> Result<Expiry, OptionError> {
    let n = parse_i64(value)?;
    let invalid = OptionError::InvalidExpire;
    if n <= 0 {
        return Err(invalid);
    }
    let seconds = matches!(word, b"EX" | b"EXAT");
    let ms = if seconds {
        n.checked_mul(1000).ok_or(invalid)?
    } else {
        n
    };
    match word {
        b"EX" | b"PX" => {
            ms.checked_add(now_ms).ok_or(OptionError::InvalidExpire)?;
            Ok(Expiry::In(ms))
        }
        _ => Ok(Expiry::At(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &str) -> Result<SetOptions, OptionError> {
        let args: Vec<&[u8]> = words.split_whitespace().map(str::as_bytes).collect();
        SetOptions::parse(&args, 1_700_000_000_000)
    }

    #[test]
    fn options_mean_what_they_mean_for_set() {
        let o = parse("nx GET ex 10 PHI KEYRING t42").unwrap();
        assert_eq!(o.condition, Condition::IfAbsent);
        assert!(o.get && o.phi);
        assert_eq!(o.expiry, Expiry::In(10_000));
        assert_eq!(o.keyring.unwrap().as_str(), "t42");
        assert_eq!(parse("XX PX 5").unwrap().expiry, Expiry::In(5));
        assert_eq!(
            parse("EXAT 2000000000").unwrap().expiry,
            Expiry::At(2_000_000_000_000)
        );
        assert_eq!(
            parse("PXAT 2000000000000").unwrap().expiry,
            Expiry::At(2_000_000_000_000)
        );
        assert_eq!(parse("KEEPTTL").unwrap().expiry, Expiry::Keep);
        assert_eq!(parse("").unwrap().expiry, Expiry::Clear);
    }

    #[test]
    fn conflicting_or_incomplete_options_are_syntax_errors() {
        for bad in [
            "NX XX",
            "EX 1 PX 1",
            "KEEPTTL EX 1",
            "EX 1 KEEPTTL",
            "EX",
            "KEYRING",
            "BOGUS",
            "KEYRING a KEYRING b",
        ] {
            assert!(matches!(parse(bad), Err(OptionError::Syntax)), "{bad}");
        }
    }

    #[test]
    fn bad_expire_times_are_refused_like_set() {
        for bad in [
            "EX 0",
            "PX -1",
            "EXAT 0",
            "EX 9223372036854775807",
            "PX 9223372036854775807",
        ] {
            assert!(
                matches!(parse(bad), Err(OptionError::InvalidExpire)),
                "{bad}"
            );
        }
        for bad in ["EX abc", "EX 1.5", "EX +1", "EX 99999999999999999999999"] {
            assert!(matches!(parse(bad), Err(OptionError::NotInteger)), "{bad}");
        }
    }
}
