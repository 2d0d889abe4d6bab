//! Open keys: type, string values (read and written in place), expiry, hash fields.

use std::ffi::{c_int, c_void};
use std::ptr;

use redis_module::raw;

use super::{string_bytes, Arg, Ctx, KeyType, OwnedString};

/// An open key; closed on drop (which also signals WATCHers of a key opened for writing).
pub struct Key<'a> {
    pub(super) ctx: Ctx<'a>,
    pub(super) ptr: *mut raw::RedisModuleKey,
}

impl<'a> Key<'a> {
    pub fn key_type(&self) -> KeyType {
        if self.ptr.is_null() {
            return KeyType::Empty;
        }
        // SAFETY: open key handle.
        let t = unsafe { api!(RedisModule_KeyType)(self.ptr) } as isize;
        match t {
            raw::REDISMODULE_KEYTYPE_EMPTY => KeyType::Empty,
            raw::REDISMODULE_KEYTYPE_STRING => KeyType::String,
            raw::REDISMODULE_KEYTYPE_HASH => KeyType::Hash,
            _ => KeyType::Other,
        }
    }

    /// The length of the value (bytes of a string, fields of a hash), read without changing
    /// it: unlike [`Key::string_value`], which makes the server convert a short or integer
    /// string to its plain form (a new object, with a fresh LRU).
    pub fn value_len(&self) -> usize {
        if self.ptr.is_null() {
            return 0;
        }
        // SAFETY: open key handle.
        unsafe { api!(RedisModule_ValueLength)(self.ptr) }
    }

    /// The bytes of a string value. Valid until the key is modified or closed.
    pub fn string_value(&self) -> &[u8] {
        let mut len = 0usize;
        // SAFETY: the key is open and holds a string (callers check the type); DMA read access
        // returns a pointer valid for `len` bytes until the key is modified or closed, which the
        // borrow of `self` ensures.
        unsafe {
            let p = api!(RedisModule_StringDMA)(self.ptr, &mut len, raw::REDISMODULE_READ as c_int);
            if p.is_null() || len == 0 {
                return &[];
            }
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }

    /// Every field and value of a hash, read through the open key (no command runs, so the
    /// key is not touched).
    pub fn hash_fields(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        extern "C" fn on_field(
            _key: *mut raw::RedisModuleKey,
            field: *mut raw::RedisModuleString,
            value: *mut raw::RedisModuleString,
            privdata: *mut c_void,
        ) {
            // SAFETY: `privdata` is the `Vec` passed below, alive for the call to RM_ScanKey.
            let fields = unsafe { &mut *privdata.cast::<Vec<(Vec<u8>, Vec<u8>)>>() };
            fields.push((string_bytes(field).to_vec(), string_bytes(value).to_vec()));
        }
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if self.key_type() != KeyType::Hash {
            return fields;
        }
        let cursor = super::ScanCursor::new();
        // SAFETY: open hash key and live cursor; the callback only copies the field and value
        // strings, which RM_ScanKey keeps alive for the call.
        while unsafe {
            api!(RedisModule_ScanKey)(
                self.ptr,
                cursor.0,
                Some(on_field),
                ptr::addr_of_mut!(fields).cast::<c_void>(),
            )
        } != 0
        {}
        fields
    }

    /// Deletes the key.
    pub fn delete(&mut self) {
        // SAFETY: key opened for writing.
        unsafe { api!(RedisModule_DeleteKey)(self.ptr) };
    }

    /// Makes the key's value a string of exactly `len` bytes (creating it if the key is empty,
    /// keeping its TTL otherwise) and returns it for writing. `None` if the server refused.
    pub fn string_buffer(&mut self, len: usize) -> Option<&mut [u8]> {
        // SAFETY: key opened for writing and empty or holding a string (callers delete other
        // types first); after a successful truncate, DMA write access returns a pointer valid
        // for `len` bytes until the key is modified or closed, which the borrow of `self` ensures.
        unsafe {
            if api!(RedisModule_StringTruncate)(self.ptr, len) != super::OK {
                return None;
            }
            let mut got = 0usize;
            let p =
                api!(RedisModule_StringDMA)(self.ptr, &mut got, raw::REDISMODULE_WRITE as c_int);
            if p.is_null() || got != len {
                return None;
            }
            Some(std::slice::from_raw_parts_mut(p.cast::<u8>(), len))
        }
    }

    /// Removes the key's TTL.
    pub fn persist(&mut self) {
        // SAFETY: key opened for writing and holding a value.
        unsafe { api!(RedisModule_SetExpire)(self.ptr, raw::REDISMODULE_NO_EXPIRE as i64) };
    }

    /// Absolute expiry in Unix milliseconds, if the key has one.
    pub fn expire_at(&self) -> Option<i64> {
        // Redis 8 reads the value's expiry without checking that there is a value.
        if self.ptr.is_null() || self.key_type() == KeyType::Empty {
            return None;
        }
        // SAFETY: open key handle.
        let at = unsafe { api!(RedisModule_GetAbsExpire)(self.ptr) };
        (at != raw::REDISMODULE_NO_EXPIRE as i64).then_some(at)
    }

    pub fn set_expire_in(&mut self, ms: i64) {
        // SAFETY: key opened for writing and holding a value.
        unsafe { api!(RedisModule_SetExpire)(self.ptr, ms) };
    }

    pub fn set_expire_at(&mut self, unix_ms: i64) {
        // SAFETY: key opened for writing and holding a value.
        unsafe { api!(RedisModule_SetAbsExpire)(self.ptr, unix_ms) };
    }

    /// The value of one hash field.
    pub fn hash_get(&self, field: Arg) -> Option<OwnedString<'a>> {
        let mut value: *mut raw::RedisModuleString = ptr::null_mut();
        // SAFETY: (field, RedisModuleString**) pairs terminated by NULL; the returned string is
        // owned by the caller (no automatic memory management) and freed by OwnedString.
        unsafe {
            api!(RedisModule_HashGet)(
                self.ptr,
                raw::REDISMODULE_HASH_NONE as c_int,
                field.0,
                &mut value as *mut *mut raw::RedisModuleString,
                ptr::null_mut::<c_void>(),
            )
        };
        (!value.is_null()).then(|| OwnedString {
            ctx: self.ctx,
            ptr: value,
        })
    }

    /// Sets one hash field; returns whether the field existed (its value was replaced), as
    /// `RedisModule_HashSet` counts. The key must be open for writing and empty or a hash
    /// (callers check), the only cases in which that call can fail.
    pub fn hash_set(&mut self, field: Arg, value: &OwnedString) -> bool {
        // SAFETY: key opened for writing; (field, value) pair terminated by NULL.
        unsafe {
            api!(RedisModule_HashSet)(
                self.ptr,
                raw::REDISMODULE_HASH_NONE as c_int,
                field.0,
                value.ptr,
                ptr::null_mut::<c_void>(),
            ) > 0
        }
    }
}

impl Drop for Key<'_> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: the handle was returned by OpenKey and is closed exactly once.
            unsafe { api!(RedisModule_CloseKey)(self.ptr) };
        }
    }
}

impl OwnedString<'_> {
    pub fn bytes(&self) -> &[u8] {
        string_bytes(self.ptr)
    }
}
