//! The callbacks Redis makes outside commands, typed (module configs are in `configs.rs`). The rest of the module registers plain
//! Rust functions here; the `extern "C"` trampolines below are the only functions Redis calls
//! for them: each turns Redis's raw pointers into a typed context valid for the call, and runs
//! the function under `run_callback` (a panic is logged and counted, never unwound into C).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::marker::PhantomData;
use std::ptr;
use std::sync::OnceLock;

use redis_module::raw;

use super::entry::run_callback;
use super::{Ctx, FilterCtx, InfoCtx, Level, AUX_BEFORE_RDB, ERR, OK};

/// A timer: what runs when it fires, and the name a failure is logged under.
pub struct Timer {
    pub name: &'static str,
    pub run: fn(Ctx),
}

extern "C" fn on_timer(ctx: *mut raw::RedisModuleCtx, data: *mut c_void) {
    // SAFETY: `data` is the `&'static Timer` that `start_timer` registered.
    let timer = unsafe { &*data.cast_const().cast::<Timer>() };
    run_callback(timer.name, (), || (timer.run)(Ctx::new(ctx)));
}

impl<'a> Ctx<'a> {
    /// Starts a one-shot timer that runs `timer` after `ms` milliseconds.
    pub fn start_timer(self, ms: i64, timer: &'static Timer) -> u64 {
        let data = ptr::from_ref(timer).cast_mut().cast::<c_void>();
        // SAFETY: valid context; `on_timer` reads `data` back as the 'static timer it is.
        unsafe { api!(RedisModule_CreateTimer)(self.0, ms, Some(on_timer), data) }
    }

    /// Stops a timer that has not fired yet.
    pub fn stop_timer(self, id: u64) {
        // SAFETY: stopping an unknown or fired timer is a harmless error.
        unsafe { api!(RedisModule_StopTimer)(self.0, id, ptr::null_mut()) };
    }
}

static INFO: OnceLock<fn(&InfoCtx)> = OnceLock::new();

extern "C" fn on_info(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    run_callback("INFO", (), || {
        if let Some(write) = INFO.get() {
            write(&InfoCtx(ctx));
        }
    });
}

static FILTER: OnceLock<fn(&mut FilterCtx)> = OnceLock::new();

extern "C" fn on_command(ctx: *mut raw::RedisModuleCommandFilterCtx) {
    run_callback("command filter", (), || {
        if let Some(filter) = FILTER.get() {
            filter(&mut FilterCtx(ctx));
        }
    });
}

/// The server events the module follows.
#[derive(Clone, Copy)]
pub enum ServerEvent {
    ReplicationRoleChanged,
    Loading,
    ForkChild,
    /// Valkey's atomic slot migration (subscribe only where the server has it).
    AtomicSlotMigration,
}

impl ServerEvent {
    const ALL: [ServerEvent; 4] = [
        ServerEvent::ReplicationRoleChanged,
        ServerEvent::Loading,
        ServerEvent::ForkChild,
        ServerEvent::AtomicSlotMigration,
    ];

    fn id(self) -> u64 {
        match self {
            ServerEvent::ReplicationRoleChanged => raw::REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED,
            ServerEvent::Loading => raw::REDISMODULE_EVENT_LOADING,
            ServerEvent::ForkChild => raw::REDISMODULE_EVENT_FORK_CHILD,
            // valkeymodule.h VALKEYMODULE_EVENT_ATOMIC_SLOT_MIGRATION (Valkey 9).
            ServerEvent::AtomicSlotMigration => 19,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ServerEvent::ReplicationRoleChanged => "role change",
            ServerEvent::Loading => "loading",
            ServerEvent::ForkChild => "fork",
            ServerEvent::AtomicSlotMigration => "atomic slot migration",
        }
    }
}

/// What handles a server event: the context and the subevent.
pub type EventHandler = fn(Ctx, u64);

static EVENTS: [OnceLock<EventHandler>; ServerEvent::ALL.len()] =
    [const { OnceLock::new() }; ServerEvent::ALL.len()];

extern "C" fn on_event<const I: usize>(
    ctx: *mut raw::RedisModuleCtx,
    _event: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    run_callback(ServerEvent::ALL[I].name(), (), || {
        if let Some(handle) = EVENTS[I].get() {
            handle(Ctx::new(ctx), subevent);
        }
    });
}

impl<'a> Ctx<'a> {
    /// Runs `write` for `INFO`.
    pub fn register_info(self, write: fn(&InfoCtx)) -> bool {
        // Registered once: a second registration fails rather than being ignored.
        if INFO.set(write).is_err() {
            return false;
        }
        // SAFETY: valid context at load time; `on_info` is a 'static function.
        unsafe { api!(RedisModule_RegisterInfoFunc)(self.0, Some(on_info)) == OK }
    }

    /// Runs `filter` on every command but the module's own calls.
    pub fn register_filter(self, filter: fn(&mut FilterCtx)) -> bool {
        if FILTER.set(filter).is_err() {
            return false;
        }
        self.register_command_filter(Some(on_command))
    }

    /// Runs `handle` with the subevent whenever `event` happens.
    pub fn subscribe(self, event: ServerEvent, handle: EventHandler) -> bool {
        let i = event as usize;
        if EVENTS[i].set(handle).is_err() {
            return false;
        }
        let trampoline: raw::RedisModuleEventCallback = match event {
            ServerEvent::ReplicationRoleChanged => Some(on_event::<0>),
            ServerEvent::Loading => Some(on_event::<1>),
            ServerEvent::ForkChild => Some(on_event::<2>),
            ServerEvent::AtomicSlotMigration => Some(on_event::<3>),
        };
        // SAFETY: valid context during OnLoad; the event struct is the server's constant id with
        // data version 1, and the trampoline is 'static.
        unsafe {
            let event = raw::RedisModuleEvent {
                id: event.id(),
                dataver: 1,
            };
            api!(RedisModule_SubscribeToServerEvent)(self.0, event, trampoline) == OK
        }
    }
}

/// The RDB being written or read by an auxiliary record's callback, for that call only.
pub struct Rdb<'a>(*mut raw::RedisModuleIO, PhantomData<&'a raw::RedisModuleIO>);

impl Rdb<'_> {
    /// Writes one string.
    pub fn save_bytes(&self, bytes: &[u8]) {
        // SAFETY: the RDB handle of the current aux_save call.
        unsafe {
            api!(RedisModule_SaveStringBuffer)(
                self.0,
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
            );
        }
    }

    /// Reads one string.
    pub fn load_bytes(&self) -> Vec<u8> {
        let mut len = 0usize;
        // SAFETY: the RDB handle of the current aux_load call; the buffer is allocated by
        // Redis and freed with RedisModule_Free after copying.
        unsafe {
            let p = api!(RedisModule_LoadStringBuffer)(self.0, &mut len);
            if p.is_null() {
                return Vec::new();
            }
            let out = std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec();
            // The record holds wrapped keys: the server's copy is wiped before it is freed.
            libc::explicit_bzero(p.cast::<c_void>(), len);
            api!(RedisModule_Free)(p.cast::<c_void>());
            out
        }
    }
}

/// A record the module writes into every RDB before the keys, and reads back.
pub struct AuxRecord {
    /// The data type's name (nine characters).
    pub name: &'static CStr,
    pub encver: c_int,
    pub save: fn(&Rdb),
    /// Reads the record written with encoding version `encver`; false fails the load.
    pub load: fn(&Rdb, c_int) -> bool,
}

static AUX: OnceLock<&'static AuxRecord> = OnceLock::new();

extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, when: c_int) {
    run_callback("RDB save", (), || {
        if let (Some(record), true) = (AUX.get(), when == AUX_BEFORE_RDB) {
            (record.save)(&Rdb(rdb, PhantomData));
        }
    });
}

extern "C" fn aux_load(rdb: *mut raw::RedisModuleIO, encver: c_int, when: c_int) -> c_int {
    run_callback("RDB load", ERR, || match AUX.get() {
        Some(record) if when == AUX_BEFORE_RDB => {
            if (record.load)(&Rdb(rdb, PhantomData), encver) {
                OK
            } else {
                ERR
            }
        }
        _ => {
            super::log_without_context(
                Level::Warning,
                "redis-enc: the RDB holds a module record where none is written",
            );
            ERR
        }
    })
}

impl<'a> Ctx<'a> {
    /// Registers `record`, carried by a data type of that name that holds no keys.
    pub fn register_aux(self, record: &'static AuxRecord) -> bool {
        if AUX.set(record).is_err() {
            return false;
        }
        super::register::create_aux_data_type(
            self,
            record.name,
            record.encver,
            Some(aux_load),
            Some(aux_save),
        )
    }
}

/// What runs on a hash keyspace notification: the event's name and the key's name.
pub type HashEventHandler = fn(Ctx, &[u8], &[u8]);

static HASH_EVENTS: OnceLock<HashEventHandler> = OnceLock::new();

extern "C" fn on_hash_event(
    ctx: *mut raw::RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    run_callback("hash notification", OK, || {
        if let Some(handle) = HASH_EVENTS.get() {
            // SAFETY: Redis passes the event's C string and the key for the call.
            let event = unsafe { CStr::from_ptr(event) }.to_bytes();
            handle(Ctx::new(ctx), event, super::string_bytes(key));
        }
        OK
    })
}

/// A job run after the notification that scheduled it, with the bytes it was given.
pub type PostJob = fn(Ctx, &[u8]);

struct PostJobData {
    run: PostJob,
    data: Vec<u8>,
}

extern "C" fn on_post_job(ctx: *mut raw::RedisModuleCtx, pd: *mut c_void) {
    // SAFETY: `pd` is the PostJobData that `after_notification` boxed; `free_post_job` frees
    // it after this call.
    let job = unsafe { &*pd.cast_const().cast::<PostJobData>() };
    run_callback("post-notification job", (), || {
        (job.run)(Ctx::new(ctx), &job.data)
    });
}

extern "C" fn free_post_job(pd: *mut c_void) {
    // SAFETY: `pd` came from Box::into_raw in `after_notification`; the server frees it once.
    drop(unsafe { Box::from_raw(pd.cast::<PostJobData>()) });
}

impl Ctx<'_> {
    /// Calls `handle` on every hash keyspace event (`hset`, `hdel`, `hexpired`, ...).
    pub fn subscribe_hash_events(self, handle: HashEventHandler) -> bool {
        if HASH_EVENTS.set(handle).is_err() {
            return false;
        }
        // SAFETY: valid context during OnLoad; the trampoline is 'static.
        unsafe {
            api!(RedisModule_SubscribeToKeyspaceEvents)(
                self.0,
                raw::REDISMODULE_NOTIFY_HASH as c_int,
                Some(on_hash_event),
            ) == OK
        }
    }

    /// Whether the server runs jobs after a notification (Redis 7.2+, Valkey 8+), where a
    /// notification's handler may write.
    pub fn has_post_notification_jobs(self) -> bool {
        // SAFETY: reads an optional function pointer of the API table filled at load.
        unsafe { std::ptr::addr_of!(raw::RedisModule_AddPostNotificationJob).read() }.is_some()
    }

    /// Runs `run(data)` once the notification being handled is done, inside the same
    /// execution unit (its writes replicate with the command's). Returns false where the
    /// server offers no such jobs.
    pub fn after_notification(self, run: PostJob, data: Vec<u8>) -> bool {
        // SAFETY: reads an optional function pointer of the API table filled at load.
        let Some(add) =
            (unsafe { std::ptr::addr_of!(raw::RedisModule_AddPostNotificationJob).read() })
        else {
            return false;
        };
        let pd = Box::into_raw(Box::new(PostJobData { run, data })).cast::<c_void>();
        // SAFETY: valid context inside a notification; the server owns `pd` from here and
        // frees it with `free_post_job` (also when it refuses the job).
        unsafe { add(self.0, Some(on_post_job), pd, Some(free_post_job)) == OK }
    }
}
