//! redis-enc: a Redis module that seals values inside Redis.
//!
//! This crate is the server adapter. It parses command arguments, calls the core
//! (`redis-enc-core`: envelope, keys, providers) and writes through the Redis module API.
//!
//! - [`load`]: `RedisModule_OnLoad`: master key, commands, configs, INFO.
//! - [`commands`]: the `ENC.*` commands, their key specs and documentation.
//! - [`setopts`]: `ENC.SET` options.
//! - [`config`], [`pattern`], [`info`], [`state`]: configs and their key-name patterns, the
//!   `INFO enc` section, the loaded keyring.
//! - [`reencrypt`]: the background re-encryption job.
//! - [`phi`], [`audit`]: the PHI policy and the audit log.
//! - [`persist`]: the key store in the RDB and the replication stream.
//! - [`store`]: the one way a sealed string or hash fields reach a key and the replicas.
//! - [`error`]: the one mapping from errors to replies.
//! - [`ffi`]: the typed layer over the raw module API, the only place with
//!   `unsafe` code; every entry point from Redis runs under `catch_unwind` there.

#![deny(unsafe_code)]

/// Every block the module frees is wiped first: no key material survives in freed memory.
#[global_allocator]
static ALLOCATOR: ffi::wipe::Wiping = ffi::wipe::Wiping;

mod acl_log;
mod audit;
mod blind;
mod clock;
mod cluster;
mod commands;
mod config;
mod dual;
mod error;
#[allow(unsafe_code)]
mod ffi;
mod guard;
mod info;
mod kms_retry;
mod load;
mod pattern;
mod persist;
mod phi;
mod reencrypt;
mod schedule;
mod setopts;
mod settings;
mod state;
mod stats;
mod store;

entry_points!(load::MODULE_VERSION, load::on_load, load::on_unload);

#[cfg(test)]
mod layers {
    //! Imports point one way (docs/ARCHITECTURE.md, "Layers"): a module uses only modules of
    //! its own layer or below, and the modules of one layer do not import each other in a
    //! circle.

    use std::collections::{BTreeMap, BTreeSet};

    /// Each top-level module and its layer, bottom first.
    const LAYERS: &[(&str, u8)] = &[
        ("ffi", 0),
        ("error", 1),
        ("stats", 1),
        ("clock", 1),
        ("pattern", 1),
        ("setopts", 1),
        ("settings", 1),
        ("state", 2),
        ("persist", 2),
        ("audit", 2),
        ("store", 2),
        ("kms_retry", 2),
        ("acl_log", 2),
        ("config", 2),
        ("cluster", 2),
        ("dual", 2),
        ("blind", 2),
        ("schedule", 2),
        ("phi", 3),
        ("guard", 3),
        ("commands", 4),
        ("reencrypt", 4),
        ("info", 5),
        ("load", 5),
    ];

    /// The modules each top-level module names as `crate::…` outside its tests.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut graph = BTreeMap::new();
        let mut stack = vec![src.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let top = rel.split(['/', '.']).next().unwrap().to_owned();
                if top == "lib" || path.file_name().is_some_and(|n| n == "tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                let deps: &mut BTreeSet<String> = graph.entry(top.clone()).or_default();
                for (at, _) in code.match_indices("crate::") {
                    let rest = &code[at + 7..];
                    let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                        let group = &group[..group.find('}').unwrap_or(group.len())];
                        group.split(',').collect()
                    } else {
                        vec![rest]
                    };
                    for name in names {
                        let name: String = name
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect();
                        if !name.is_empty() && name != top && !name.ends_with("_entry") {
                            deps.insert(name);
                        }
                    }
                }
            }
        }
        graph
    }

    #[test]
    fn imports_point_down_and_never_in_a_circle() {
        let layer = |m: &str| LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l);
        let graph = imports();
        for (module, deps) in &graph {
            let own = layer(module).unwrap_or_else(|| panic!("{module} has no layer in LAYERS"));
            for dep in deps {
                if dep == "entry_points" {
                    continue;
                }
                let theirs = layer(dep).unwrap_or_else(|| panic!("{dep} has no layer in LAYERS"));
                assert!(
                    theirs <= own,
                    "{module} (layer {own}) imports {dep} (layer {theirs})"
                );
            }
        }
        // No circle within a layer: every module can be ordered after what it imports.
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while done.len() < graph.len() {
            let next = graph
                .iter()
                .find(|(m, deps)| {
                    !done.contains(m.as_str())
                        && deps
                            .iter()
                            .all(|d| done.contains(d.as_str()) || !graph.contains_key(d))
                })
                .map(|(m, _)| m.as_str());
            let left: Vec<_> = graph
                .keys()
                .filter(|m| !done.contains(m.as_str()))
                .collect();
            done.insert(next.unwrap_or_else(|| {
                panic!("these modules import each other in a circle: {left:?}")
            }));
        }
    }
}
