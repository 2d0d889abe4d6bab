//! Container commands, timers and keyspace scans (the re-encryption job).

use std::ffi::{c_void, CString};

use redis_module::raw;

use super::{string_bytes, Ctx};

impl<'a> Ctx<'a> {
    /// Creates a container command (such as `ENC.KEYRING`) whose subcommands are added with
    /// [`Ctx::create_subcommand`].
    pub fn create_container(self, name: &str, summary: &std::ffi::CStr) -> Result<(), String> {
        let cname = CString::new(name).map_err(|_| format!("bad command name {name}"))?;
        // SAFETY: valid context during OnLoad; a null handler makes a container command.
        unsafe {
            if api!(RedisModule_CreateCommand)(self.0, cname.as_ptr(), None, c"".as_ptr(), 0, 0, 0)
                != super::OK
            {
                return Err(format!("cannot create command {name}"));
            }
            let command = api!(RedisModule_GetCommand)(self.0, cname.as_ptr());
            if command.is_null() {
                return Err(format!("cannot find command {name}"));
            }
            let mut info: raw::RedisModuleCommandInfo = std::mem::zeroed();
            info.version = crate::ffi::command_info::info_version();
            info.summary = summary.as_ptr();
            info.since = c"0.1.0".as_ptr();
            info.arity = -2;
            api!(RedisModule_SetCommandInfo)(command, &info);
        }
        Ok(())
    }

    /// Adds subcommand `sub` to container `parent`, with its documentation.
    pub fn create_subcommand(
        self,
        parent: &str,
        sub: &str,
        handler: raw::RedisModuleCmdFunc,
        flags: &str,
        acl_categories: &str,
        info: &raw::RedisModuleCommandInfo,
    ) -> Result<(), String> {
        let cparent = CString::new(parent).map_err(|_| format!("bad command name {parent}"))?;
        let csub = CString::new(sub).map_err(|_| format!("bad subcommand {sub}"))?;
        let cfull =
            CString::new(format!("{parent}|{sub}")).map_err(|_| format!("bad subcommand {sub}"))?;
        let cflags = CString::new(flags).map_err(|_| format!("bad flags for {sub}"))?;
        // SAFETY: valid context during OnLoad; `parent` was created by create_container.
        unsafe {
            let parent_cmd = api!(RedisModule_GetCommand)(self.0, cparent.as_ptr());
            if parent_cmd.is_null()
                || api!(RedisModule_CreateSubcommand)(
                    parent_cmd,
                    csub.as_ptr(),
                    handler,
                    cflags.as_ptr(),
                    0,
                    0,
                    0,
                ) != super::OK
            {
                return Err(format!("cannot create {parent} {sub}"));
            }
            let command = api!(RedisModule_GetCommand)(self.0, cfull.as_ptr());
            if command.is_null() || api!(RedisModule_SetCommandInfo)(command, info) != super::OK {
                return Err(format!("cannot document {parent} {sub}"));
            }
            super::register::set_acl_categories(
                command,
                acl_categories,
                &format!("{parent} {sub}"),
            )?;
        }
        Ok(())
    }

    /// Runs one step of a keyspace scan, giving every key name seen to `seen`. Returns false
    /// when the scan is complete.
    pub fn scan_step(self, cursor: &ScanCursor, seen: &mut Vec<Vec<u8>>) -> bool {
        extern "C" fn on_key(
            _ctx: *mut raw::RedisModuleCtx,
            name: *mut raw::RedisModuleString,
            _key: *mut raw::RedisModuleKey,
            privdata: *mut c_void,
        ) {
            // SAFETY: `privdata` is the `Vec` passed below, alive for the call to RM_Scan.
            let seen = unsafe { &mut *privdata.cast::<Vec<Vec<u8>>>() };
            seen.push(string_bytes(name).to_vec());
        }
        // SAFETY: valid context and cursor; the callback only copies key names.
        unsafe {
            api!(RedisModule_Scan)(
                self.0,
                cursor.0,
                Some(on_key),
                (seen as *mut Vec<Vec<u8>>).cast::<c_void>(),
            ) != 0
        }
    }
}

/// A keyspace scan cursor; destroyed on drop.
pub struct ScanCursor(pub(super) *mut raw::RedisModuleScanCursor);

// SAFETY: the cursor is created, used and destroyed on the main thread only; it sits in a
// static between timer ticks.
unsafe impl Send for ScanCursor {}

impl ScanCursor {
    pub fn new() -> ScanCursor {
        // SAFETY: creates a cursor owned by this value.
        ScanCursor(unsafe { api!(RedisModule_ScanCursorCreate)() })
    }
}

impl Drop for ScanCursor {
    fn drop(&mut self) {
        // SAFETY: the cursor was created by ScanCursorCreate and is destroyed once.
        unsafe { api!(RedisModule_ScanCursorDestroy)(self.0) }
    }
}
