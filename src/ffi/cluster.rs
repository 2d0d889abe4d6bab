//! Redis Cluster: this node's id, the nodes it knows, and messages over the cluster bus.

use std::ffi::{c_char, c_int, c_uchar, c_void};
use std::fmt;
use std::sync::OnceLock;

use redis_module::raw;

use super::entry::run_callback;
use super::{Ctx, OK};

const ID_LEN: usize = raw::REDISMODULE_NODE_ID_LEN as usize;

/// A cluster node's id (40 characters).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; ID_LEN]);

impl NodeId {
    /// The id from the 40 bytes at `p`, which Redis does not terminate.
    ///
    /// # Safety
    /// `p` must point to at least 40 readable bytes.
    unsafe fn read(p: *const c_char) -> Option<NodeId> {
        if p.is_null() {
            return None;
        }
        let mut id = [0u8; ID_LEN];
        // SAFETY: the caller's contract.
        id.copy_from_slice(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), ID_LEN) });
        Some(NodeId(id))
    }

    /// The id as the NUL-terminated string the API looks nodes up by.
    fn terminated(&self) -> [u8; ID_LEN + 1] {
        let mut out = [0u8; ID_LEN + 1];
        out[..ID_LEN].copy_from_slice(&self.0);
        out
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What this node knows of another (or of itself).
#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    /// `ip:port` as the cluster announces it.
    pub addr: String,
    pub primary: bool,
    pub myself: bool,
    /// Flagged as failed by the cluster (`FAIL`: a majority of primaries agreed), not merely
    /// suspected by this node (`PFAIL`).
    pub failing: bool,
}

/// Valkey's `VALKEYMODULE_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION` (valkeymodule.h, Valkey 9).
const VALKEY_HANDLES_ATOMIC_SLOT_MIGRATION: c_int = 1 << 5;

impl<'a> Ctx<'a> {
    /// Whether the server is Valkey with atomic slot migration (`CLUSTER MIGRATESLOTS`): its
    /// API answers to Valkey's own names, and the options it knows include that one. Known by
    /// the functions the server offers, not by its version.
    pub fn has_atomic_slot_migration(self) -> bool {
        type OptionsAll = unsafe extern "C" fn() -> c_int;
        let Some(all) = self.valkey_api(c"ValkeyModule_GetModuleOptionsAll") else {
            return false;
        };
        // SAFETY: the server's `GetModuleOptionsAll`, of this type, taking nothing.
        unsafe {
            let all: OptionsAll = std::mem::transmute::<*mut c_void, OptionsAll>(all);
            all() & VALKEY_HANDLES_ATOMIC_SLOT_MIGRATION != 0
        }
    }

    /// Whether the server runs scripts through the module API, as a scripting engine (Valkey 9
    /// and later): it offers `ValkeyModule_RegisterScriptingEngine`.
    pub fn scripts_through_module_api(self) -> bool {
        self.valkey_api(c"ValkeyModule_RegisterScriptingEngine")
            .is_some()
    }

    /// A function of Valkey's own API by name, if the server offers it.
    fn valkey_api(self, name: &std::ffi::CStr) -> Option<*mut c_void> {
        let mut f: *mut c_void = std::ptr::null_mut();
        // SAFETY: `RedisModule_GetApi` is set by `RedisModule_Init`; it writes a function
        // pointer into `f`, or nothing.
        unsafe {
            let get_api = std::ptr::addr_of!(raw::RedisModule_GetApi).read()?;
            let found = get_api(name.as_ptr(), std::ptr::addr_of_mut!(f).cast::<c_void>()) == OK;
            (found && !f.is_null()).then_some(f)
        }
    }

    /// Tells Valkey the module handles atomic slot migration (the module sets no other
    /// option). Only where [`Ctx::has_atomic_slot_migration`].
    pub fn declare_atomic_slot_migration(self) {
        // SAFETY: valid context during OnLoad.
        unsafe { api!(RedisModule_SetModuleOptions)(self.0, VALKEY_HANDLES_ATOMIC_SLOT_MIGRATION) }
    }

    /// Whether the server runs in cluster mode.
    pub fn in_cluster(self) -> bool {
        self.flags() & raw::REDISMODULE_CTX_FLAGS_CLUSTER as c_int != 0
    }

    /// Every node this one knows, itself included; empty outside a cluster.
    pub fn cluster_nodes(self) -> Vec<Node> {
        let mut n = 0usize;
        // SAFETY: valid context; the list (null outside a cluster) holds `n` ids of 40 bytes
        // each and is freed with FreeClusterNodesList below.
        let list = unsafe { api!(RedisModule_GetClusterNodesList)(self.0, &mut n) };
        if list.is_null() {
            return Vec::new();
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: `i < n` entries of the list, each 40 bytes.
            let Some(id) = (unsafe { NodeId::read(*list.add(i)) }) else {
                continue;
            };
            let term = id.terminated();
            let mut ip = [0u8; 46];
            let mut port: c_int = 0;
            let mut flags: c_int = 0;
            // SAFETY: `term` is a NUL-terminated id; `ip` has room for any address (46 bytes,
            // NET_IP_STR_LEN); no primary id is asked for.
            let found = unsafe {
                api!(RedisModule_GetClusterNodeInfo)(
                    self.0,
                    term.as_ptr().cast::<c_char>(),
                    ip.as_mut_ptr().cast::<c_char>(),
                    std::ptr::null_mut(),
                    &mut port,
                    &mut flags,
                )
            };
            if found != OK {
                continue;
            }
            let ip_len = ip.iter().position(|b| *b == 0).unwrap_or(ip.len());
            let has = |flag: u32| flags & flag as c_int != 0;
            nodes.push(Node {
                id,
                addr: format!("{}:{port}", String::from_utf8_lossy(&ip[..ip_len])),
                primary: has(raw::REDISMODULE_NODE_MASTER),
                myself: has(raw::REDISMODULE_NODE_MYSELF),
                failing: has(raw::REDISMODULE_NODE_FAIL),
            });
        }
        // SAFETY: the list GetClusterNodesList returned, freed once.
        unsafe { api!(RedisModule_FreeClusterNodesList)(list) };
        nodes
    }

    /// Sends a message of `kind` to node `to`, or to every node; false if it could not.
    pub fn send_cluster_message(self, to: Option<&NodeId>, kind: u8, payload: &[u8]) -> bool {
        let Ok(len) = u32::try_from(payload.len()) else {
            return false;
        };
        let term = to.map(NodeId::terminated);
        let target = term
            .as_ref()
            .map_or(std::ptr::null(), |t| t.as_ptr().cast::<c_char>());
        // SAFETY: valid context; the target is null (every node) or a NUL-terminated id; the
        // payload is `len` readable bytes that the server copies.
        unsafe {
            api!(RedisModule_SendClusterMessage)(
                self.0,
                target,
                kind,
                payload.as_ptr().cast::<c_char>(),
                len,
            ) == OK
        }
    }

    /// Runs `receive` with the sender and the payload of every message of `kind` this module
    /// receives over the cluster bus.
    pub fn register_cluster_receiver(self, kind: u8, receive: Receiver) -> bool {
        if RECEIVERS[usize::from(kind)].set(receive).is_err() {
            return false;
        }
        // SAFETY: valid context during OnLoad; the trampoline is 'static.
        unsafe { api!(RedisModule_RegisterClusterMessageReceiver)(self.0, kind, Some(on_message)) };
        true
    }
}

/// What handles a cluster message: the context, the sender, the payload.
pub type Receiver = fn(Ctx, &NodeId, &[u8]);

static RECEIVERS: [OnceLock<Receiver>; 256] = [const { OnceLock::new() }; 256];

extern "C" fn on_message(
    ctx: *mut raw::RedisModuleCtx,
    sender: *const c_char,
    kind: u8,
    payload: *const c_uchar,
    len: u32,
) {
    run_callback("cluster message", (), || {
        let Some(receive) = RECEIVERS[usize::from(kind)].get() else {
            return;
        };
        // SAFETY: the sender is a node id of 40 bytes.
        let Some(sender) = (unsafe { NodeId::read(sender) }) else {
            return;
        };
        let payload = if payload.is_null() {
            &[][..]
        } else {
            // SAFETY: the server passes `len` readable bytes, live for the callback.
            unsafe { std::slice::from_raw_parts(payload, len as usize) }
        };
        receive(Ctx::new(ctx), &sender, payload);
    });
}
