//! The PHI policy's vocabulary, without Redis: what is done to PHI, why the guard refuses a
//! command, and the time-to-live bounds PHI keys must keep.

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
