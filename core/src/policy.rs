//! The PHI policy's pure parts, without Redis: what is done to PHI, why the guard refuses a
//! command, the time-to-live bounds PHI keys must keep and the arithmetic that applies them,
//! and the reading of a `DUMP` payload the guard checks before a `RESTORE` under a PHI key.

use crate::setopts::Expiry;

mod dump;
pub use dump::{dump_hash_all, dump_string};

/// What is being done to PHI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Reading a PHI value.
    Read,
    /// Writing a PHI value.
    Write,
}

impl Op {
    /// The `ENC.PHI` subcommand whose ACL permission allows it.
    pub fn subcommand(self) -> &'static [u8] {
        match self {
            Op::Read => b"READ",
            Op::Write => b"WRITE",
        }
    }

    /// The ACL permission that allows it.
    pub fn permission(self) -> &'static str {
        match self {
            Op::Read => "enc.phi|read",
            Op::Write => "enc.phi|write",
        }
    }

    /// The audit record's event.
    pub fn event(self) -> &'static str {
        match self {
            Op::Read => "phi-read",
            Op::Write => "phi-write",
        }
    }
}

/// Why a command was refused; the code travels as the first argument of `ENC._REFUSED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Plaintext, or a value sealed for another key, written under a PHI key.
    Plaintext,
    /// A PHI value moved or copied where the policy cannot follow it.
    Move,
    /// A PHI key's time to live set outside the bounds, or removed.
    Ttl,
    /// Options the guard cannot read as the server would: it cannot tell what they do.
    Options,
}

impl Refusal {
    /// The code that names it as the first argument of `ENC._REFUSED`.
    pub fn code(self) -> &'static [u8] {
        match self {
            Refusal::Plaintext => b"plaintext",
            Refusal::Move => b"move",
            Refusal::Ttl => b"ttl",
            Refusal::Options => b"options",
        }
    }

    /// The refusal a code names.
    pub fn from_code(code: &[u8]) -> Option<Refusal> {
        match code {
            b"plaintext" => Some(Refusal::Plaintext),
            b"move" => Some(Refusal::Move),
            b"ttl" => Some(Refusal::Ttl),
            b"options" => Some(Refusal::Options),
            _ => None,
        }
    }

    /// The reply of a refused command.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Plaintext => "ERR enc.phi-guard: this would store plaintext (or a value sealed for another key) \
                                   under a PHI key; write it with ENC.SET, ENC.MSET or ENC.HSETFIELD",
            Refusal::Move => "ERR enc.phi-guard: sealed values are bound to their key name; use ENC.RENAME or ENC.COPY \
                              (MOVE between databases is not supported for PHI keys)",
            Refusal::Ttl => "ERR enc.phi-guard: this would leave a PHI key's time to live outside enc.phi-ttl-min / \
                             enc.phi-ttl-max (write PHI with an explicit expiry inside them, or set enc.phi-ttl-default)",
            Refusal::Options => "ERR enc.phi-guard: options the guard cannot read, on a PHI key; write it with ENC.SET",
        }
    }
}

/// The PHI time-to-live bounds in seconds (`enc.phi-ttl-min`, `-max`, `-default`); 0 = none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlBounds {
    /// The shortest allowed.
    pub min: i64,
    /// The longest allowed.
    pub max: i64,
    /// Given to a PHI key written without one.
    pub default: i64,
}

impl TtlBounds {
    /// The expiry a PHI write ends with, at `now_ms`: the requested one if inside the bounds,
    /// the default if none was requested. `existing_at` is the key's current expiry (for
    /// `KEEPTTL`). `Err` carries the time to live asked for, in seconds (`None`: none), which
    /// the bounds refuse.
    pub fn bound(
        self,
        expiry: Expiry,
        existing_at: Option<i64>,
        now_ms: i64,
    ) -> Result<Expiry, Option<i64>> {
        let ttl_ms = match expiry {
            Expiry::Clear => None,
            Expiry::Keep => existing_at.map(|at| at - now_ms),
            Expiry::In(ms) => Some(ms),
            Expiry::At(at) => Some(at - now_ms),
        };
        match ttl_ms {
            None if self.default > 0 && self.refuses(self.default * 1000) => {
                Err(Some(self.default))
            }
            None if self.default > 0 => Ok(Expiry::In(self.default * 1000)),
            None if self.min > 0 || self.max > 0 => Err(None),
            None => Ok(expiry),
            Some(ms) if self.refuses(ms) => Err(Some(ms / 1000)),
            Some(_) => Ok(expiry),
        }
    }

    /// Whether a time to live of `ms` milliseconds is outside the bounds.
    pub fn refuses(self, ms: i64) -> bool {
        (self.min > 0 && ms < self.min * 1000) || (self.max > 0 && ms > self.max * 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_bounds_table() {
        const NOW: i64 = 1_000_000;
        let b = |min, max, default| TtlBounds { min, max, default };
        /// Bounds, the expiry asked for, the key's expiry, and the result.
        type Case = (TtlBounds, Expiry, Option<i64>, Result<Expiry, Option<i64>>);
        let cases: &[Case] = &[
            (b(0, 0, 0), Expiry::Clear, None, Ok(Expiry::Clear)),
            (b(0, 0, 0), Expiry::In(5), None, Ok(Expiry::In(5))),
            (b(0, 0, 60), Expiry::Clear, None, Ok(Expiry::In(60_000))),
            (b(0, 0, 60), Expiry::In(1_000), None, Ok(Expiry::In(1_000))),
            (b(10, 0, 0), Expiry::Clear, None, Err(None)),
            (b(0, 100, 0), Expiry::Clear, None, Err(None)),
            (b(10, 100, 0), Expiry::In(9_999), None, Err(Some(9))),
            (
                b(10, 100, 0),
                Expiry::In(10_000),
                None,
                Ok(Expiry::In(10_000)),
            ),
            (
                b(10, 100, 0),
                Expiry::In(100_000),
                None,
                Ok(Expiry::In(100_000)),
            ),
            (b(10, 100, 0), Expiry::In(100_001), None, Err(Some(100))),
            (
                b(10, 100, 0),
                Expiry::At(NOW + 50_000),
                None,
                Ok(Expiry::At(NOW + 50_000)),
            ),
            (b(10, 100, 0), Expiry::At(NOW + 5_000), None, Err(Some(5))),
            (
                b(10, 100, 0),
                Expiry::Keep,
                Some(NOW + 20_000),
                Ok(Expiry::Keep),
            ),
            (
                b(10, 100, 0),
                Expiry::Keep,
                Some(NOW + 200_000),
                Err(Some(200)),
            ),
            (b(10, 100, 50), Expiry::Keep, None, Ok(Expiry::In(50_000))),
            (b(10, 100, 500), Expiry::Clear, None, Err(Some(500))),
        ];
        for (bounds, asked, existing, expected) in cases {
            assert_eq!(
                bounds.bound(*asked, *existing, NOW),
                *expected,
                "{bounds:?} {asked:?} {existing:?}"
            );
        }
    }

    #[test]
    fn dump_payloads_table() {
        let mut envelope = vec![0xe5, 0x01];
        envelope.extend([7u8; 60]);
        let mut short = vec![0, 62];
        short.extend(&envelope);
        short.extend([10, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        let mut long = vec![0, 0x40 | 1, 4, 0xe5, 0x01];
        long.extend([9u8; 258]);
        let mut wide = vec![0, 0x80, 0, 0, 0, 3];
        wide.extend(b"abc");
        let cases: &[(&[u8], Option<usize>)] = &[
            (&short, Some(62)),
            (&long, Some(260)),
            (&wide, Some(3)),
            (&[0, 5, b'h', b'e', b'l', b'l', b'o'], Some(5)),
            (&[4, 1, 2], None),
            (&[0, 60, 0xe5], None),
            (&[0, 0x41], None),
            (&[0, 0x80, 0, 0], None),
            (&[0, 0x80, 0xff, 0xff, 0xff, 0xff], None),
            (&[0, 0xc0, 1], None),
            (&[0], None),
            (&[], None),
        ];
        for (payload, len) in cases {
            assert_eq!(dump_string(payload).map(<[u8]>::len), *len, "{payload:?}");
        }
        assert_eq!(dump_string(&short), Some(&envelope[..]));
    }
}
