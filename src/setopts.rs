//! The options of `ENC.SET`: parsed in the core (`redis_enc_core::setopts`), turned into
//! replies here.

pub use redis_enc_core::setopts::{
    parse_getex, parse_i64, Condition, Expiry, OptionError, SetOptions,
};

use crate::error::CmdError;

impl From<OptionError> for CmdError {
    fn from(e: OptionError) -> CmdError {
        match e {
            OptionError::Syntax => CmdError::Syntax,
            OptionError::NotInteger => CmdError::NotInteger,
            OptionError::InvalidExpire => CmdError::InvalidExpire("enc.set"),
            _ => CmdError::Core(redis_enc_core::Error::InvalidKeyringName),
        }
    }
}
