//! Replies of commands run with `RedisModule_Call`.

use redis_module::raw;

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

    /// Whether the reply is the status `OK`.
    pub fn is_ok_status(&self) -> bool {
        self.kind() == raw::REDISMODULE_REPLY_STRING && self.bytes() == b"OK"
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
