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
    /// Parses the options (the words after key and value) exactly as `SET` does: an option may
    /// repeat (the last expiry given wins, and only its number is read), options that exclude
    /// each other are a syntax error. `now_ms` is the server's clock, used to reject relative
    /// times that would overflow, as `SET` does. `PHI` and `KEYRING name` are `ENC.SET`'s own.
    pub fn parse(args: &[&[u8]], now_ms: i64) -> Result<SetOptions, OptionError> {
        let mut opts = SetOptions {
            condition: Condition::Always,
            get: false,
            expiry: Expiry::Clear,
            phi: false,
            keyring: None,
        };
        // The expiry option given last (`KEEPTTL`, or a unit with its number).
        let mut expiry: Option<(Vec<u8>, Option<&[u8]>)> = None;
        let unit_of = |e: &Option<(Vec<u8>, Option<&[u8]>)>| e.as_ref().map(|(w, _)| w.clone());
        let mut i = 0;
        while i < args.len() {
            let word = args[i].to_ascii_uppercase();
            let next = args.get(i + 1).copied();
            match word.as_slice() {
                b"NX" if opts.condition != Condition::IfPresent => {
                    opts.condition = Condition::IfAbsent;
                }
                b"XX" if opts.condition != Condition::IfAbsent => {
                    opts.condition = Condition::IfPresent;
                }
                b"GET" => opts.get = true,
                b"PHI" => opts.phi = true,
                b"KEEPTTL" if matches!(unit_of(&expiry).as_deref(), None | Some(b"KEEPTTL")) => {
                    expiry = Some((word, None));
                }
                b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                    let Some(value) = next else {
                        return Err(OptionError::Syntax);
                    };
                    // A unit may repeat; another unit, or KEEPTTL, may not join it.
                    if unit_of(&expiry).is_some_and(|unit| unit != word) {
                        return Err(OptionError::Syntax);
                    }
                    expiry = Some((word, Some(value)));
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
        opts.expiry = match expiry {
            None => Expiry::Clear,
            Some((_, None)) => Expiry::Keep,
            Some((unit, Some(value))) => parse_expiry(&unit, value, now_ms)?,
        };
        Ok(opts)
    }
}

/// Parses the options of `GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]` as the server does (an
/// option may repeat; the last wins). `None`: the TTL is left as it is; `Some(Expiry::Clear)`:
/// `PERSIST`.
pub fn parse_getex(args: &[&[u8]], now_ms: i64) -> Result<Option<Expiry>, OptionError> {
    let mut last: Option<(Vec<u8>, Option<&[u8]>)> = None;
    let mut i = 0;
    while i < args.len() {
        let word = args[i].to_ascii_uppercase();
        if last.as_ref().is_some_and(|(unit, _)| *unit != word) {
            return Err(OptionError::Syntax);
        }
        match word.as_slice() {
            b"PERSIST" => last = Some((word, None)),
            b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
                let value = args.get(i + 1).copied().ok_or(OptionError::Syntax)?;
                last = Some((word, Some(value)));
                i += 1;
            }
            _ => return Err(OptionError::Syntax),
        }
        i += 1;
    }
    match last {
        None => Ok(None),
        Some((_, None)) => Ok(Some(Expiry::Clear)),
        Some((unit, Some(value))) => parse_expiry(&unit, value, now_ms).map(Some),
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
            "XX NX",
            "EX 1 PX 1",
            "EXAT 1 EX 1",
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
    fn getex_options_are_read_as_the_server_reads_them() {
        let p = |w: &str| {
            let args: Vec<&[u8]> = w.split_whitespace().map(str::as_bytes).collect();
            parse_getex(&args, 1_700_000_000_000)
        };
        assert_eq!(p(""), Ok(None));
        assert_eq!(p("PERSIST PERSIST"), Ok(Some(Expiry::Clear)));
        assert_eq!(p("EX 10 EX 99999"), Ok(Some(Expiry::In(99_999_000))));
        assert_eq!(p("EX abc EX 3"), Ok(Some(Expiry::In(3_000))));
        assert_eq!(p("EX 1 PX 1"), Err(OptionError::Syntax));
        assert_eq!(p("PERSIST EX 1"), Err(OptionError::Syntax));
        assert_eq!(p("EX"), Err(OptionError::Syntax));
    }

    /// As `SET`: an option may repeat, the last expiry wins, and only its number is read.
    #[test]
    fn repeated_options_mean_what_they_mean_for_set() {
        assert_eq!(
            parse("EX 10 EX 999999").unwrap().expiry,
            Expiry::In(999_999_000)
        );
        assert_eq!(parse("EX abc EX 5").unwrap().expiry, Expiry::In(5_000));
        assert_eq!(parse("NX NX").unwrap().condition, Condition::IfAbsent);
        assert_eq!(parse("XX XX").unwrap().condition, Condition::IfPresent);
        assert_eq!(parse("KEEPTTL KEEPTTL").unwrap().expiry, Expiry::Keep);
        assert_eq!(parse("GET GET").unwrap().expiry, Expiry::Clear);
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
