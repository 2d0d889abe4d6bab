//! `COMMAND DOCS` and key specs for every command, turned into the structures that
//! `RedisModule_SetCommandInfo` takes.
//!
//! Key specs are what ACL and cluster routing use: read commands declare read-only keys, so a
//! user with `%R~` patterns can run them.

use std::ffi::CString;
use std::ptr;

use redis_module::raw;

/// How a command uses one key (Redis key-spec flags).
#[derive(Clone, Copy)]
pub enum KeyUse {
    /// Reads the value: `RO ACCESS`.
    Read,
    /// Reads only metadata: `RO`.
    ReadMetadata,
    /// Overwrites or creates: `OW UPDATE`.
    Overwrite,
    /// Modifies in place: `RW UPDATE`.
    Update,
    /// Reads then deletes: `RW ACCESS DELETE`.
    ReadDelete,
}

impl KeyUse {
    fn flags(self) -> u64 {
        let f = match self {
            KeyUse::Read => raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS,
            KeyUse::ReadMetadata => raw::REDISMODULE_CMD_KEY_RO,
            KeyUse::Overwrite => raw::REDISMODULE_CMD_KEY_OW | raw::REDISMODULE_CMD_KEY_UPDATE,
            KeyUse::Update => raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE,
            KeyUse::ReadDelete => {
                raw::REDISMODULE_CMD_KEY_RW
                    | raw::REDISMODULE_CMD_KEY_ACCESS
                    | raw::REDISMODULE_CMD_KEY_DELETE
            }
        };
        u64::from(f)
    }
}

/// One key spec: keys start at argument `first`, and continue to `last` (relative: -1 is the
/// last argument, 0 means only one key) every `step` arguments.
#[derive(Clone, Copy)]
pub struct KeySpec {
    pub key_use: KeyUse,
    pub first: i32,
    pub last: i32,
    pub step: i32,
}

/// The type of a documented argument.
#[derive(Clone, Copy)]
pub enum ArgKind {
    Key(i32),
    String,
    Integer,
    UnixTime,
    Token,
    OneOf,
    Block,
}

/// One documented argument.
pub struct ArgDoc {
    pub name: &'static str,
    pub kind: ArgKind,
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
    pub sub: Vec<ArgDoc>,
}

impl ArgDoc {
    fn new(name: &'static str, kind: ArgKind) -> ArgDoc {
        ArgDoc {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
            sub: Vec::new(),
        }
    }
    pub fn key(name: &'static str, spec: i32) -> ArgDoc {
        ArgDoc::new(name, ArgKind::Key(spec))
    }
    pub fn string(name: &'static str) -> ArgDoc {
        ArgDoc::new(name, ArgKind::String)
    }
    pub fn integer(name: &'static str) -> ArgDoc {
        ArgDoc::new(name, ArgKind::Integer)
    }
    pub fn unix_time(name: &'static str) -> ArgDoc {
        ArgDoc::new(name, ArgKind::UnixTime)
    }
    /// A keyword on its own, such as `NX`.
    pub fn token(word: &'static str) -> ArgDoc {
        ArgDoc {
            token: Some(word),
            ..ArgDoc::new(word, ArgKind::Token)
        }
    }
    pub fn one_of(name: &'static str, sub: Vec<ArgDoc>) -> ArgDoc {
        ArgDoc {
            sub,
            ..ArgDoc::new(name, ArgKind::OneOf)
        }
    }
    pub fn block(name: &'static str, sub: Vec<ArgDoc>) -> ArgDoc {
        ArgDoc {
            sub,
            ..ArgDoc::new(name, ArgKind::Block)
        }
    }
    /// Preceded by a keyword, as in `EX seconds`.
    pub fn after(mut self, word: &'static str) -> ArgDoc {
        self.token = Some(word);
        self
    }
    pub fn optional(mut self) -> ArgDoc {
        self.optional = true;
        self
    }
    pub fn multiple(mut self) -> ArgDoc {
        self.multiple = true;
        self
    }
}

/// Everything `COMMAND INFO` and `COMMAND DOCS` show for one command.
pub struct CommandDoc {
    pub summary: &'static str,
    pub complexity: &'static str,
    pub since: &'static str,
    pub arity: i32,
    pub keys: Vec<KeySpec>,
    pub args: Vec<ArgDoc>,
}

/// Memory for the C structures. Redis copies what it keeps during SetCommandInfo, but keeping
/// these for the life of the process costs a few kilobytes and removes any doubt.
fn leak_str(s: &str) -> *const std::ffi::c_char {
    CString::new(s)
        .map(|c| c.into_raw() as *const _)
        .unwrap_or(ptr::null())
}

fn leak<T>(v: Vec<T>) -> *mut T {
    Box::leak(v.into_boxed_slice()).as_mut_ptr()
}

fn arg_to_raw(arg: &ArgDoc) -> raw::RedisModuleCommandArg {
    let (type_, key_spec_index) = match arg.kind {
        ArgKind::Key(spec) => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
            spec,
        ),
        ArgKind::String => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
            -1,
        ),
        ArgKind::Integer => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
            -1,
        ),
        ArgKind::UnixTime => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_UNIX_TIME,
            -1,
        ),
        ArgKind::Token => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
            -1,
        ),
        ArgKind::OneOf => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
            -1,
        ),
        ArgKind::Block => (
            raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
            -1,
        ),
    };
    let mut flags = raw::REDISMODULE_CMD_ARG_NONE;
    if arg.optional {
        flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL;
    }
    if arg.multiple {
        flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE;
    }
    raw::RedisModuleCommandArg {
        name: leak_str(arg.name),
        type_,
        key_spec_index,
        token: arg.token.map_or(ptr::null(), leak_str),
        summary: ptr::null(),
        since: ptr::null(),
        flags: flags as i32,
        deprecated_since: ptr::null(),
        subargs: args_to_raw(&arg.sub),
        display_text: ptr::null(),
    }
}

fn args_to_raw(args: &[ArgDoc]) -> *mut raw::RedisModuleCommandArg {
    if args.is_empty() {
        return ptr::null_mut();
    }
    let mut v: Vec<raw::RedisModuleCommandArg> = args.iter().map(arg_to_raw).collect();
    // SAFETY-free: an all-zero RedisModuleCommandArg (null pointers, zero ints) ends the array.
    v.push(raw::RedisModuleCommandArg {
        name: ptr::null(),
        type_: 0,
        key_spec_index: 0,
        token: ptr::null(),
        summary: ptr::null(),
        since: ptr::null(),
        flags: 0,
        deprecated_since: ptr::null(),
        subargs: ptr::null_mut(),
        display_text: ptr::null(),
    });
    leak(v)
}

fn key_spec_to_raw(k: &KeySpec) -> raw::RedisModuleCommandKeySpec {
    raw::RedisModuleCommandKeySpec {
        notes: ptr::null(),
        flags: k.key_use.flags(),
        begin_search_type: raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
        bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
            index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos: k.first },
        },
        find_keys_type: raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
        fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
            range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                lastkey: k.last,
                keystep: k.step,
                limit: 0,
            },
        },
    }
}

fn terminator_key_spec() -> raw::RedisModuleCommandKeySpec {
    raw::RedisModuleCommandKeySpec {
        notes: ptr::null(),
        flags: 0,
        begin_search_type: raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INVALID,
        bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
            index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos: 0 },
        },
        find_keys_type: raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_OMITTED,
        fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
            range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                lastkey: 0,
                keystep: 0,
                limit: 0,
            },
        },
    }
}

static INFO_VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
};

/// The command-info structure version this module fills in.
pub fn info_version() -> *const raw::RedisModuleCommandInfoVersion {
    &INFO_VERSION
}

impl CommandDoc {
    /// The structure for `RedisModule_SetCommandInfo`; its memory is never freed.
    pub fn to_raw(&self) -> raw::RedisModuleCommandInfo {
        let mut specs: Vec<raw::RedisModuleCommandKeySpec> =
            self.keys.iter().map(key_spec_to_raw).collect();
        specs.push(terminator_key_spec());
        raw::RedisModuleCommandInfo {
            version: &INFO_VERSION,
            summary: leak_str(self.summary),
            complexity: leak_str(self.complexity),
            since: leak_str(self.since),
            history: ptr::null_mut(),
            tips: ptr::null(),
            arity: self.arity,
            key_specs: if self.keys.is_empty() {
                ptr::null_mut()
            } else {
                leak(specs)
            },
            args: args_to_raw(&self.args),
        }
    }
}
