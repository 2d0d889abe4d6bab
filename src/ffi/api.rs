//! The one list of module API functions this module calls: [`required_api!`] declares a marker
//! for each name, which [`api!`] refers to (so a call to a function missing from the list does
//! not compile), and [`missing_apis`] checks each at load.

use redis_module::raw;

/// Resolves a module API function pointer. Sound to `expect`: the name must be in
/// [`required_api!`]'s list (`required::NAME` does not compile otherwise), and
/// `RedisModule_OnLoad` refuses to load while [`missing_apis`] is not empty.
macro_rules! api {
    ($name:ident) => {{
        let () = $crate::ffi::api::required::$name;
        raw::$name.expect(concat!(stringify!($name), " is checked at load"))
    }};
}

/// The one list of module API functions this module calls: it declares each name for
/// [`api!`] and checks each at load.
macro_rules! required_api {
    ($($name:ident),* $(,)?) => {
        /// One marker per required function; [`api!`] names it, so a function missing
        /// from the list cannot be called.
        #[allow(non_upper_case_globals)]
        pub(crate) mod required {
            $(pub(crate) const $name: () = ();)*
        }

        /// Names of required module API functions the server did not provide.
        pub fn missing_apis() -> Vec<&'static str> {
            let mut missing = Vec::new();
            $(
                // SAFETY: reading a function-pointer static that RedisModule_Init wrote before
                // any other module code runs; the module API is single-threaded here.
                let present = unsafe { std::ptr::addr_of!(raw::$name).read().is_some() };
                if !present || hidden(stringify!($name)) {
                    missing.push(stringify!($name));
                }
            )*
            missing
        }

        /// Every required name, in the order of the list.
        #[cfg(test)]
        pub const REQUIRED: &[&str] = &[$(stringify!($name)),*];
    };
}

/// Debug builds only: `REDIS_ENC_HIDE_API=NAME[,NAME]` reports those functions as missing,
/// to test how a server without them is met. Release builds ignore the variable.
fn hidden(name: &str) -> bool {
    cfg!(debug_assertions)
        && std::env::var("REDIS_ENC_HIDE_API")
            .is_ok_and(|list| list.split(',').any(|hidden| hidden.trim() == name))
}

required_api!(
    RedisModule_ACLAddLogEntry,
    RedisModule_ACLCheckCommandPermissions,
    RedisModule_ACLCheckKeyPermissions,
    RedisModule_BlockClient,
    RedisModule_Call,
    RedisModule_CallReplyArrayElement,
    RedisModule_CallReplyInteger,
    RedisModule_CallReplyLength,
    RedisModule_CallReplyStringPtr,
    RedisModule_CallReplyType,
    RedisModule_CloseKey,
    RedisModule_CommandFilterArgGet,
    RedisModule_CommandFilterArgInsert,
    RedisModule_CommandFilterArgReplace,
    RedisModule_CommandFilterArgsCount,
    RedisModule_CreateCommand,
    RedisModule_CreateDataType,
    RedisModule_CreateString,
    RedisModule_CreateSubcommand,
    RedisModule_CreateTimer,
    RedisModule_DeleteKey,
    RedisModule_Free,
    RedisModule_FreeCallReply,
    RedisModule_FreeClusterNodesList,
    RedisModule_FreeModuleUser,
    RedisModule_FreeString,
    RedisModule_FreeThreadSafeContext,
    RedisModule_GetAbsExpire,
    RedisModule_GetBlockedClientPrivateData,
    RedisModule_GetClientId,
    RedisModule_GetClientInfoById,
    RedisModule_GetClientUserNameById,
    RedisModule_GetClusterNodeInfo,
    RedisModule_GetClusterNodesList,
    RedisModule_GetCommand,
    RedisModule_GetCommandKeysWithFlags,
    RedisModule_GetContextFlags,
    RedisModule_GetCurrentUserName,
    RedisModule_GetDetachedThreadSafeContext,
    RedisModule_GetModuleUserFromUserName,
    RedisModule_GetSelectedDb,
    RedisModule_GetThreadSafeContext,
    RedisModule_HashGet,
    RedisModule_HashSet,
    RedisModule_InfoAddFieldCString,
    RedisModule_InfoAddFieldULongLong,
    RedisModule_InfoAddSection,
    RedisModule_KeyType,
    RedisModule_LoadConfigs,
    RedisModule_LoadStringBuffer,
    RedisModule_Log,
    RedisModule_Milliseconds,
    RedisModule_NotifyKeyspaceEvent,
    RedisModule_OpenKey,
    RedisModule_RedactClientCommandArgument,
    RedisModule_RegisterBoolConfig,
    RedisModule_RegisterClusterMessageReceiver,
    RedisModule_RegisterCommandFilter,
    RedisModule_RegisterInfoFunc,
    RedisModule_RegisterNumericConfig,
    RedisModule_RegisterStringConfig,
    RedisModule_Replicate,
    RedisModule_ReplyWithArray,
    RedisModule_ReplyWithError,
    RedisModule_ReplyWithLongLong,
    RedisModule_ReplyWithMap,
    RedisModule_ReplyWithNull,
    RedisModule_ReplyWithSimpleString,
    RedisModule_ReplyWithStringBuffer,
    RedisModule_SaveStringBuffer,
    RedisModule_Scan,
    RedisModule_ScanCursorCreate,
    RedisModule_ScanCursorDestroy,
    RedisModule_ScanKey,
    RedisModule_SelectDb,
    RedisModule_SendClusterMessage,
    RedisModule_SetAbsExpire,
    RedisModule_SetCommandInfo,
    RedisModule_SetExpire,
    RedisModule_SetModuleOptions,
    RedisModule_StopTimer,
    RedisModule_StringDMA,
    RedisModule_StringPtrLen,
    RedisModule_StringTruncate,
    RedisModule_SubscribeToKeyspaceEvents,
    RedisModule_SubscribeToServerEvent,
    RedisModule_ThreadSafeContextLock,
    RedisModule_ThreadSafeContextUnlock,
    RedisModule_UnblockClient,
    RedisModule_ValueLength,
);
