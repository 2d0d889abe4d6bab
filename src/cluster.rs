//! One keyring for the whole cluster (docs/OPERATIONS.md, "Redis Cluster").
//!
//! Keyring changes are made on one node, the cluster's keyring authority: the primary with the
//! lowest node id among those the cluster has not marked `FAIL` (a node only this one suspects,
//! `PFAIL`, keeps its place, so one node's hiccup does not make a second authority). Any other node refuses a change and names the
//! authority. The authority sends its whole key store (keys wrapped, never in clear) to every
//! node over the cluster bus as soon as it changes; every primary merges what it receives, as
//! it merges `ENC.KEYRING IMPORT` (states only move forward), and propagates the result to its
//! replicas and its AOF. Because bus messages can be lost and nodes restart, every primary also
//! announces its epoch each second; a primary that hears a peer behind it, or diverged from it,
//! sends that peer its store. So a node that was down catches up within a second or two of
//! rejoining, by itself.
//!
//! A rotation is two-phase: the authority adds the new version beside the primary and sends
//! it; every node (replicas too) announces its epoch; once every node the cluster does not
//! mark `FAIL` has announced the authority's digest, the authority makes the version primary
//! and sends that. No node seals under a version another node lacks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_enc_core::keystore::{prefetch, Epoch, Locking};
use redis_enc_core::{KeyId, KeyVersion, KeyringId};

use crate::audit::{self, Access};
use crate::error::CmdError;
use crate::ffi::{Caller, Ctx, Level, Node, NodeId, Timer};
use crate::{persist, state};

/// A primary's epoch: "E1", the epoch number (8 bytes, big-endian), the digest (32 bytes).
const EPOCH: u8 = 1;
/// A whole key store: an export (keys wrapped).
const KEYRINGS: u8 = 2;
/// Values a primary sealed under each primary version since it loaded: "S1", then per version
/// the keyring id and version (2 bytes each) and the count (8 bytes), big-endian.
const SEALED: u8 = 3;
const SEALED_MAGIC: &[u8; 2] = b"S1";

const EPOCH_MAGIC: &[u8; 2] = b"E1";
const EPOCH_LEN: usize = 2 + 8 + 32;

/// How often a primary announces its epoch.
const ANNOUNCE_MS: i64 = 1000;

/// What this node last heard from each peer.
struct Heard {
    epoch: Epoch,
    at: Instant,
}

static PEERS: Mutex<Option<HashMap<NodeId, Heard>>> = Mutex::new(None);

/// When a primary last said how many values it sealed under each primary version.
type SealCounts = (Instant, Vec<(KeyId, u64)>);

/// What each primary last said it sealed.
static PEER_SEALS: Mutex<Option<HashMap<NodeId, SealCounts>>> = Mutex::new(None);

/// Keyring conflicts met when merging a peer's store (two different keys for one version).
static CONFLICTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

static ANNOUNCE: Timer = Timer {
    name: "keyring epoch announcement",
    run: announce_tick,
};

/// Starts following the cluster, when the server runs in cluster mode.
pub fn start(ctx: Ctx) -> Result<(), String> {
    if !ctx.in_cluster() {
        return Ok(());
    }
    *PEERS.lock().unwrap_or_else(|p| p.into_inner()) = Some(HashMap::new());
    *PEER_SEALS.lock().unwrap_or_else(|p| p.into_inner()) = Some(HashMap::new());
    if !ctx.register_cluster_receiver(EPOCH, on_epoch)
        || !ctx.register_cluster_receiver(KEYRINGS, on_keyrings)
        || !ctx.register_cluster_receiver(SEALED, on_sealed)
    {
        return Err("cannot receive keyring messages over the cluster bus".into());
    }
    ctx.start_timer(ANNOUNCE_MS, &ANNOUNCE);
    Ok(())
}

fn my_epoch() -> Option<Epoch> {
    state::with(|s| Ok(s.keys.epoch())).ok()
}

fn myself(nodes: &[Node]) -> Option<&Node> {
    nodes.iter().find(|n| n.myself)
}

/// The node that makes keyring changes: the primary with the lowest id among those not
/// failing.
fn authority(nodes: &[Node]) -> Option<&Node> {
    nodes
        .iter()
        .filter(|n| n.primary && !n.failing)
        .min_by_key(|n| n.id)
}

/// Refuses a keyring change asked of a node that is not the cluster's keyring authority.
/// Changes the server makes itself (replication, the AOF) always pass.
pub fn may_change_keyrings(ctx: Ctx) -> Result<(), CmdError> {
    if !ctx.in_cluster() || ctx.is_server_itself() {
        return Ok(());
    }
    let nodes = ctx.cluster_nodes();
    match authority(&nodes) {
        Some(a) if !a.myself => Err(CmdError::Server(format!(
            "ERR keyring changes are made on the cluster's keyring authority, node {} at {}; \
             send it there (it reaches every node from there)",
            a.id, a.addr
        ))),
        _ => in_step(&nodes, heard_window(ctx)),
    }
}

/// How long a peer's last announcement counts as current: the cluster's node timeout, and
/// never less than three announcements. An authority that stalled for less than that was not
/// failed by the others, so no other node can have made keyring changes meanwhile; a busy
/// peer whose announcements come late is not taken for a lost one.
fn heard_window(ctx: Ctx) -> Duration {
    let timeout = ctx
        .config_get(b"cluster-node-timeout")
        .and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_millis(timeout.max(3 * ANNOUNCE_MS as u64))
}

/// Refuses a change on an authority that does not know it is in step with every primary: one
/// just started (from an old RDB, say) or back from a stall, which would otherwise make a
/// version another node already made, with another key.
fn in_step(nodes: &[Node], window: Duration) -> Result<(), CmdError> {
    let Some(mine) = my_epoch() else {
        return Ok(());
    };
    let peers = PEERS.lock().unwrap_or_else(|p| p.into_inner());
    let heard = peers.as_ref();
    for n in nodes
        .iter()
        .filter(|n| n.primary && !n.myself && !n.failing)
    {
        let theirs = heard
            .and_then(|h| h.get(&n.id))
            .filter(|h| h.at.elapsed() < window);
        let silent = format!(
            "nothing heard from it in the last {} ms",
            window.as_millis()
        );
        let why = match theirs {
            None => silent.as_str(),
            Some(h) if h.epoch.number > mine.number => "it holds newer keyrings",
            Some(h) if h.epoch.number == mine.number && h.epoch.digest != mine.digest => {
                "it holds other keyrings; see runbook 16 step 4"
            }
            Some(_) => continue,
        };
        return Err(CmdError::Server(format!(
            "ERR this node is not known to be in step with node {} at {} ({why}): keyring \
             changes wait until it is in step with every primary (within seconds); try again",
            n.id, n.addr
        )));
    }
    Ok(())
}

/// After a keyring change on this node: a primary sends every node its store now, and every
/// node (a replica applying what its primary sent too) says where it stands.
pub fn announce(ctx: Ctx) {
    if !ctx.in_cluster() {
        return;
    }
    let nodes = ctx.cluster_nodes();
    if myself(&nodes).is_some_and(|m| m.primary) {
        send_keyrings(ctx, None);
    }
    let epoch = my_epoch();
    if let Some(epoch) = epoch {
        send_epoch(ctx, epoch);
    }
    refresh_status(ctx, &nodes, epoch);
}

fn send_keyrings(ctx: Ctx, to: Option<&NodeId>) {
    let Ok(blob) = state::with(|s| Ok(s.keys.export())) else {
        return;
    };
    if !ctx.send_cluster_message(to, KEYRINGS, &blob) {
        ctx.log(
            Level::Warning,
            "redis-enc: cannot send the keyrings over the cluster bus",
        );
    }
}

fn announce_tick(ctx: Ctx) {
    ctx.start_timer(ANNOUNCE_MS, &ANNOUNCE);
    let nodes = ctx.cluster_nodes();
    promote_when_held(ctx, &nodes);
    let epoch = my_epoch();
    refresh_status(ctx, &nodes, epoch);
    if let Some(epoch) = epoch {
        send_epoch(ctx, epoch);
    }
    if myself(&nodes).is_some_and(|m| m.primary) {
        send_sealed(ctx);
    }
}

/// A primary tells the others how many values it sealed under each primary version, so that
/// the authority can rotate after a number of values sealed cluster-wide.
fn send_sealed(ctx: Ctx) {
    let Ok(used) = state::with(|s| Ok(s.keys.primaries_in_use())) else {
        return;
    };
    let mut message = SEALED_MAGIC.to_vec();
    for p in used.iter().filter(|p| p.sealed > 0) {
        message.extend_from_slice(&p.id.keyring.0.to_be_bytes());
        message.extend_from_slice(&p.id.version.0.to_be_bytes());
        message.extend_from_slice(&p.sealed.to_be_bytes());
    }
    ctx.send_cluster_message(None, SEALED, &message);
}

fn on_sealed(_ctx: Ctx, sender: &NodeId, payload: &[u8]) {
    let Some(rest) = payload.strip_prefix(SEALED_MAGIC) else {
        return;
    };
    if !rest.len().is_multiple_of(12) {
        return;
    }
    let counts = rest
        .chunks_exact(12)
        .map(|c| {
            let id = KeyId {
                keyring: KeyringId(u16::from_be_bytes([c[0], c[1]])),
                version: KeyVersion(u16::from_be_bytes([c[2], c[3]])),
            };
            let mut count = [0u8; 8];
            count.copy_from_slice(&c[4..]);
            (id, u64::from_be_bytes(count))
        })
        .collect();
    if let Some(seals) = PEER_SEALS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
    {
        seals.insert(*sender, (Instant::now(), counts));
    }
}

/// Values the other primaries said, in the last five seconds, they sealed under `id` since
/// they loaded; 0 outside a cluster.
pub fn sealed_elsewhere(id: KeyId) -> u64 {
    PEER_SEALS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map_or(0, |seals| {
            seals
                .values()
                .filter(|(at, _)| at.elapsed() < Duration::from_secs(5))
                .flat_map(|(_, counts)| counts.iter())
                .filter(|(k, _)| *k == id)
                .map(|(_, n)| n)
                .sum()
        })
}

/// Whether this node may make keyring changes of its own accord: outside a cluster, or as
/// the cluster's keyring authority.
pub fn may_act(ctx: Ctx) -> bool {
    !ctx.in_cluster() || authority(&ctx.cluster_nodes()).is_some_and(|a| a.myself)
}

/// Every node, replicas too, announces where its keyrings stand: the authority promotes a
/// held version only once every node holds it.
fn send_epoch(ctx: Ctx, epoch: Epoch) {
    let mut message = Vec::with_capacity(EPOCH_LEN);
    message.extend_from_slice(EPOCH_MAGIC);
    message.extend_from_slice(&epoch.number.to_be_bytes());
    message.extend_from_slice(&epoch.digest);
    ctx.send_cluster_message(None, EPOCH, &message);
}

fn parse_epoch(payload: &[u8]) -> Option<Epoch> {
    if payload.len() != EPOCH_LEN || &payload[..2] != EPOCH_MAGIC {
        return None;
    }
    let number = u64::from_be_bytes(payload[2..10].try_into().ok()?);
    let digest = payload[10..].try_into().ok()?;
    Some(Epoch { number, digest })
}

/// Nodes that have not announced the authority's digest in the last few seconds, among those
/// not failing; `None` when this node is not the authority.
fn lagging(nodes: &[Node], mine: Epoch) -> Option<usize> {
    if !authority(nodes).is_some_and(|a| a.myself) {
        return None;
    }
    let peers = PEERS.lock().unwrap_or_else(|p| p.into_inner());
    let heard = peers.as_ref()?;
    Some(
        nodes
            .iter()
            .filter(|n| !n.myself && !n.failing)
            .filter(|n| {
                !heard.get(&n.id).is_some_and(|h| {
                    h.at.elapsed() < Duration::from_millis(3 * ANNOUNCE_MS as u64)
                        && h.epoch == mine
                })
            })
            .count(),
    )
}

/// On the authority: versions held beside their primaries become primary once every node
/// holds them.
fn promote_when_held(ctx: Ctx, nodes: &[Node]) {
    // The digest (a hash over every key's check) only when something waits to be promoted.
    let Ok(Some(mine)) =
        state::with(|s| Ok((!s.keys.held_for_promotion().is_empty()).then(|| s.keys.epoch())))
    else {
        return;
    };
    if lagging(nodes, mine) != Some(0) {
        return;
    }
    let Ok(promoted) = state::with_mut(|s| Ok(s.keys.promote_held())) else {
        return;
    };
    if persist::propagate(ctx).is_err() {
        ctx.log(
            Level::Warning,
            "redis-enc: cannot propagate a promoted key version",
        );
    }
    announce(ctx);
    for (name, version) in promoted {
        ctx.log(
            Level::Notice,
            &format!(
                "redis-enc: keyring '{}' version {} now seals: every node holds it",
                name.as_str(),
                version.0
            ),
        );
        audit::record_as(
            cluster_caller(String::new()),
            Access {
                event: "keyring",
                command: "cluster keyring promote",
                key: None,
                keyring: Some(name.as_str().to_owned()),
                version: Some(version.0),
                outcome: "ok",
                detail: Some("every node holds it".into()),
            },
        );
    }
}

fn cluster_caller(addr: String) -> Caller {
    Caller {
        user: "(cluster)".into(),
        client_id: 0,
        addr,
    }
}

/// A peer's epoch: remembered, and answered with this node's store when the peer is a
/// primary behind or diverged (replicas follow their primary).
fn on_epoch(ctx: Ctx, sender: &NodeId, payload: &[u8]) {
    let Some(theirs) = parse_epoch(payload) else {
        return;
    };
    if let Some(peers) = PEERS.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        peers.insert(
            *sender,
            Heard {
                epoch: theirs,
                at: Instant::now(),
            },
        );
    }
    let nodes = ctx.cluster_nodes();
    if authority(&nodes).is_some_and(|a| a.myself) {
        // The last node to hold a held version may be this one: it seals now.
        promote_when_held(ctx, &nodes);
        refresh_status(ctx, &nodes, my_epoch());
    }
    let primary = |id: &NodeId| nodes.iter().any(|n| &n.id == id && n.primary);
    if !myself(&nodes).is_some_and(|m| m.primary) || !primary(sender) {
        return;
    }
    let Some(mine) = my_epoch() else { return };
    if mine.number > theirs.number || (mine.number == theirs.number && mine.digest != theirs.digest)
    {
        send_keyrings(ctx, Some(sender));
    }
}

/// A peer's whole store: merged into this one (a primary only), then propagated to this
/// node's replicas and AOF when it changed anything.
fn on_keyrings(ctx: Ctx, sender: &NodeId, blob: &[u8]) {
    let nodes = ctx.cluster_nodes();
    if !myself(&nodes).is_some_and(|m| m.primary) {
        return;
    }
    let from_authority = authority(&nodes).is_some_and(|a| &a.id == sender);
    // A node that has sealed nothing yet takes the authority's keyrings as they are.
    let before = my_epoch();
    let merged = state::with_mut(|s| {
        let jobs = s.unwraps_for(blob, from_authority)?;
        let held = s.held();
        let prefetched = prefetch(&jobs, &held.masters(), &held.unwrappers());
        s.merge(blob, Locking::Allow, prefetched, from_authority)
    });
    redis_enc_core::key::scrub_stack();
    let addr = nodes
        .iter()
        .find(|n| &n.id == sender)
        .map_or_else(String::new, |n| n.addr.clone());
    let after = my_epoch();
    match merged {
        // A promoted primary changes no version but moves the epoch: it is propagated too.
        Ok(report) if after != before => {
            if persist::propagate(ctx).is_err() {
                ctx.log(
                    Level::Warning,
                    "redis-enc: cannot propagate the keyrings received from the cluster",
                );
            }
            let detail = format!(
                "from node {sender}: {} keyrings added, {} versions changed, epoch {}",
                report.keyrings_added,
                report.versions_changed,
                after.map_or(0, |e| e.number)
            );
            ctx.log(
                Level::Notice,
                &format!("redis-enc: keyrings merged {detail}"),
            );
            if let Some(epoch) = after {
                send_epoch(ctx, epoch);
            }
            audit::record_as(
                cluster_caller(addr),
                Access {
                    event: "keyring",
                    command: "cluster keyring sync",
                    key: None,
                    keyring: None,
                    version: None,
                    outcome: "ok",
                    detail: Some(detail),
                },
            );
        }
        Ok(_) => {}
        Err(e) => {
            CONFLICTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ctx.log(
                Level::Warning,
                &format!(
                    "redis-enc: the keyrings of cluster node {sender} ({addr}) do not merge \
                     here: {}",
                    e.reply_text()
                ),
            );
        }
    }
}

/// What `INFO enc` shows of the cluster's keyrings, as of the last announcement.
#[derive(Clone, Default)]
pub struct Status {
    /// The authority's `ip:port`, or `myself`.
    pub authority: Option<String>,
    /// On the authority: whether it would make a keyring change now (it is in step with
    /// every primary).
    pub ready: Option<bool>,
    /// Primaries heard from within the cluster's node timeout (at least three seconds).
    pub peers: usize,
    /// Of those, how many announced another epoch than this node's.
    pub peers_differing: usize,
    pub conflicts: u64,
    /// Versions held beside their primaries, waiting for every node (`name:version`).
    pub held: Vec<String>,
    /// On the authority: nodes that do not hold its keyrings yet.
    pub lagging: Option<usize>,
    /// The highest epoch a node announced lately, when above this node's: it is behind.
    pub behind: Option<(u64, u64)>,
}

static STATUS: Mutex<Option<Status>> = Mutex::new(None);

/// The cluster's keyring status; `None` outside a cluster.
pub fn status() -> Option<Status> {
    STATUS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Why a key version may be missing here: this node's keyrings are behind a peer's.
pub fn behind() -> Option<String> {
    let (mine, theirs) = status()?.behind?;
    Some(format!(
        "this node's keyrings are behind the cluster's (epoch {mine}, a node holds {theirs}) \
         and catch up by themselves within seconds; try again"
    ))
}

fn refresh_status(ctx: Ctx, nodes: &[Node], epoch: Option<Epoch>) {
    let recent_window = heard_window(ctx);
    let (peers, differing, highest) = PEERS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map_or((0, 0, 0), |peers| {
            let recent: Vec<_> = peers
                .iter()
                .filter(|(id, h)| {
                    h.at.elapsed() < recent_window && nodes.iter().any(|n| &n.id == *id)
                })
                .collect();
            let primaries: Vec<_> = recent
                .iter()
                .filter(|(id, _)| nodes.iter().any(|n| &n.id == *id && n.primary))
                .collect();
            let differing = primaries
                .iter()
                .filter(|(_, h)| Some(h.epoch) != epoch)
                .count();
            let highest = recent
                .iter()
                .map(|(_, h)| h.epoch.number)
                .max()
                .unwrap_or(0);
            (primaries.len(), differing, highest)
        });
    let held = state::with(|s| Ok(s.keys.held_for_promotion()))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, v)| format!("{}:{}", name.as_str(), v.0))
        .collect();
    let ready = authority(nodes)
        .filter(|a| a.myself)
        .map(|_| in_step(nodes, recent_window).is_ok());
    *STATUS.lock().unwrap_or_else(|p| p.into_inner()) = Some(Status {
        ready,
        authority: authority(nodes).map(|a| {
            if a.myself {
                "myself".to_owned()
            } else {
                a.addr.clone()
            }
        }),
        peers,
        peers_differing: differing,
        conflicts: CONFLICTS.load(std::sync::atomic::Ordering::Relaxed),
        held,
        lagging: epoch.and_then(|e| lagging(nodes, e)),
        behind: epoch
            .filter(|e| e.number < highest)
            .map(|e| (e.number, highest)),
    });
}
