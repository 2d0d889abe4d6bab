//! Replies of commands run with `RedisModule_Call`.

use redis_module::raw;

/// A reply read out of a [`CallReply`] (RESP2 shapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Bytes(Vec<u8>),
    Int(i64),
    Array(Vec<Reply>),
    Nil,
    Error(Vec<u8>),
}

impl Reply {
    /// The value after `name` in a flat `name value ...` array (how RESP2 shows a map).
    pub fn field(&self, name: &[u8]) -> Option<&Reply> {
        let Reply::Array(items) = self else {
            return None;
        };
        items
            .chunks(2)
            .find(|pair| pair[0] == Reply::Bytes(name.to_vec()))
            .and_then(|pair| pair.get(1))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Reply::Bytes(b) | Reply::Error(b) => b,
            _ => &[],
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// A reply from [`Ctx::call`]; freed on drop.
pub struct CallReply(pub(super) *mut raw::RedisModuleCallReply);

impl CallReply {
    fn kind(&self) -> isize {
        if self.0.is_null() {
            return raw::REDISMODULE_REPLY_UNKNOWN;
        }
        // SAFETY: live reply.
        unsafe { api!(RedisModule_CallReplyType)(self.0) as isize }
    }

    pub fn is_error(&self) -> bool {
        matches!(
            self.kind(),
            raw::REDISMODULE_REPLY_ERROR | raw::REDISMODULE_REPLY_UNKNOWN
        )
    }

    /// The error text of an error reply.
    pub fn error_text(&self) -> String {
        if self.0.is_null() {
            return "ERR internal call failed".to_owned();
        }
        String::from_utf8_lossy(self.bytes_of(self.0)).into_owned()
    }

    /// The whole reply, read out.
    pub fn read(&self) -> Reply {
        read(self.0)
    }

    /// The bytes of a string reply (empty for other replies).
    pub fn bytes(&self) -> &[u8] {
        if self.0.is_null() {
            return &[];
        }
        self.bytes_of(self.0)
    }

    /// The string elements of an array reply (map replies are not requested).
    pub fn string_elements(&self) -> Vec<Vec<u8>> {
        if self.kind() != raw::REDISMODULE_REPLY_ARRAY {
            return Vec::new();
        }
        // SAFETY: live array reply; elements are owned by it and read before it is freed.
        unsafe {
            let len = api!(RedisModule_CallReplyLength)(self.0);
            (0..len)
                .map(|i| {
                    self.bytes_of(api!(RedisModule_CallReplyArrayElement)(self.0, i))
                        .to_vec()
                })
                .collect()
        }
    }

    fn bytes_of(&self, reply: *mut raw::RedisModuleCallReply) -> &[u8] {
        let mut len = 0usize;
        // SAFETY: `reply` is this reply or one of its elements, alive while `self` is.
        unsafe {
            let p = api!(RedisModule_CallReplyStringPtr)(reply, &mut len);
            if p.is_null() || len == 0 {
                return &[];
            }
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }
}

impl Drop for CallReply {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: reply returned by RedisModule_Call, freed once.
            unsafe { api!(RedisModule_FreeCallReply)(self.0) };
        }
    }
}

fn read(reply: *mut raw::RedisModuleCallReply) -> Reply {
    if reply.is_null() {
        return Reply::Nil;
    }
    // SAFETY: `reply` is a live reply or one of its elements, alive while the top reply is;
    // strings are copied out before it is freed.
    unsafe {
        let bytes = || {
            let mut len = 0usize;
            let p = api!(RedisModule_CallReplyStringPtr)(reply, &mut len);
            if p.is_null() || len == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec()
            }
        };
        match api!(RedisModule_CallReplyType)(reply) as isize {
            raw::REDISMODULE_REPLY_STRING => Reply::Bytes(bytes()),
            raw::REDISMODULE_REPLY_ERROR => Reply::Error(bytes()),
            raw::REDISMODULE_REPLY_INTEGER => Reply::Int(api!(RedisModule_CallReplyInteger)(reply)),
            raw::REDISMODULE_REPLY_ARRAY => {
                let len = api!(RedisModule_CallReplyLength)(reply);
                Reply::Array(
                    (0..len)
                        .map(|i| read(api!(RedisModule_CallReplyArrayElement)(reply, i)))
                        .collect(),
                )
            }
            _ => Reply::Nil,
        }
    }
}
