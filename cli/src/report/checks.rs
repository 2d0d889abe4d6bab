//! The checks: each turns what was read from the servers into a status, figures and evidence,
//! and names the HIPAA Security Rule paragraphs (45 CFR 164.312) it supports.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::gather::{Coverage, Node};

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    NotApplicable,
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::NotApplicable => "not-applicable",
        }
    }
}

/// The paragraphs of 164.312 and their titles, in the rule's order.
pub const PARAGRAPHS: &[(&str, &str)] = &[
    ("164.312(a)(1)", "Access control"),
    ("164.312(a)(2)(i)", "Unique user identification"),
    ("164.312(a)(2)(ii)", "Emergency access procedure"),
    ("164.312(a)(2)(iii)", "Automatic logoff"),
    ("164.312(a)(2)(iv)", "Encryption and decryption"),
    ("164.312(b)", "Audit controls"),
    ("164.312(c)(1)", "Integrity"),
    (
        "164.312(c)(2)",
        "Mechanism to authenticate electronic protected health information",
    ),
    ("164.312(d)", "Person or entity authentication"),
    ("164.312(e)(1)", "Transmission security"),
    ("164.312(e)(2)(i)", "Integrity controls"),
    ("164.312(e)(2)(ii)", "Encryption"),
];

/// One check's result.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub hipaa: &'static [&'static str],
    pub status: Status,
    /// One line, with the figure that decided the status.
    pub summary: String,
    pub figures: Value,
    pub evidence: Value,
}

impl Check {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "hipaa": self.hipaa,
            "status": self.status.name(),
            "summary": self.summary,
            "figures": self.figures,
            "evidence": self.evidence,
        })
    }
}

/// Limits the checks hold the servers to.
pub struct Limits {
    /// The oldest a keyring's primary version may be, in seconds (`None`: the servers'
    /// `enc.keyring-rotate-after`, else 365 days).
    pub max_key_age: Option<u64>,
    pub max_backup_age: u64,
    pub max_drill_age: u64,
}

/// What the report knows besides the servers: the audit log and the records, already read.
pub struct Extra {
    /// One per chain of audit-log files given (none: no `--audit-log`).
    pub audit: Vec<AuditFacts>,
    pub records: Option<RecordFacts>,
    pub now: u64,
}

/// The audit log files given for one node (or for the one server), verified.
pub struct AuditFacts {
    /// The node they belong to (`ADDRESS=FILE`), or `None`: any node.
    pub node: Option<String>,
    pub files: Vec<PathBuf>,
    /// `None`: no master key to verify with.
    pub verified: Option<redis_enc_core::audit::Verification>,
    /// The MACs of the verified records: a log that is whole to the moment the servers were
    /// read holds each server's chain head among them.
    pub macs: std::collections::BTreeSet<String>,
    pub events: BTreeMap<String, u64>,
    pub denials: u64,
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
}

/// The backup and restore-drill records given.
pub struct RecordFacts {
    pub files: Vec<PathBuf>,
    pub records: Vec<crate::records::Read>,
    /// The last record's MAC: compare it with an earlier report's to see nothing was cut.
    pub head: Option<String>,
}

const DAY: u64 = 86_400;

fn days(secs: u64) -> f64 {
    (secs as f64 / DAY as f64 * 10.0).round() / 10.0
}

/// A percentage with one decimal, rounded down (99.96 % of values sealed is not 100.0 %).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 100.0;
    }
    ((part as u128 * 1000 / whole as u128) as f64) / 10.0
}

/// Every check, in the report's order.
pub fn run(nodes: &[Node], extra: &Extra, limits: &Limits) -> Vec<Check> {
    vec![
        phi_coverage(nodes),
        phi_ttl(nodes),
        phi_access(nodes),
        transport(nodes),
        at_rest(nodes),
        keys(nodes, extra.now, limits),
        audit(nodes, &extra.audit),
        backups(extra.records.as_ref(), extra.now, limits),
        guard(nodes),
    ]
}

/// The configs among `names` whose values differ between nodes.
fn differing(nodes: &[Node], names: &[&'static str]) -> Vec<&'static str> {
    names
        .iter()
        .copied()
        .filter(|name| {
            nodes
                .iter()
                .any(|n| n.config(name) != nodes[0].config(name))
        })
        .collect()
}

/// The coverage of every primary, summed.
pub fn total_coverage(nodes: &[Node]) -> Coverage {
    let mut total = Coverage::default();
    for c in nodes.iter().filter_map(|n| n.coverage.as_ref()) {
        total.add(c);
    }
    total
}

fn phi_coverage(nodes: &[Node]) -> Check {
    let c = total_coverage(nodes);
    let patterns = nodes.first().map(Node::phi_patterns).unwrap_or_default();
    let values = c.phi_values_sealed + c.phi_values_plain;
    let pct = percent(c.phi_values_sealed, values);
    let differing = differing(
        nodes,
        &[
            "enc.phi-patterns",
            "enc.phi-plain-fields",
            "enc.blind-indexes",
        ],
    );
    let unsynced: Vec<&str> = nodes
        .iter()
        .filter(|n| {
            n.coverage.is_some()
                && n.info("role") == "slave"
                && n.info("master_link_status") != "up"
        })
        .map(|n| n.address.as_str())
        .collect();
    let lone_node = nodes.len() == 1 && nodes[0].config("cluster-enabled") == "yes";
    let (status, summary) = if lone_node {
        (
            Status::Fail,
            "this server is one node of a cluster: only its own slots were read (run the report with --cluster)".to_owned(),
        )
    } else if let Some(name) = differing.first() {
        (
            Status::Fail,
            format!("the nodes differ in {name}: each counts PHI by its own patterns, so no figure covers the whole"),
        )
    } else if let Some(node) = unsynced.first() {
        (
            Status::Fail,
            format!("{node} is a replica not in sync with its primary: what it holds is not what the primary holds"),
        )
    } else if patterns.is_empty() {
        (
            Status::Warn,
            "enc.phi-patterns is empty: no key is known to hold PHI, so coverage cannot be measured"
                .to_owned(),
        )
    } else if c.phi_values_plain > 0 {
        (
            Status::Fail,
            format!(
                "{pct:.1}% of PHI values sealed ({} of {values}; {} in plaintext)",
                c.phi_values_sealed, c.phi_values_plain
            ),
        )
    } else {
        (
            Status::Pass,
            format!(
                "{pct:.1}% of PHI values sealed ({} of {values})",
                c.phi_values_sealed
            ),
        )
    };
    Check {
        id: "phi-coverage",
        title: "PHI values are sealed",
        hipaa: &["164.312(a)(2)(iv)", "164.312(c)(1)", "164.312(c)(2)"],
        status,
        summary,
        figures: json!({
            "coverage_percent": pct,
            "phi_values": values,
            "phi_values_sealed": c.phi_values_sealed,
            "phi_values_plain": c.phi_values_plain,
            "phi_keys": c.phi_keys,
            "phi_keys_other_type": c.phi_keys_other_type,
            "phi_fields_plain_by_policy": c.phi_fields_plain_by_policy,
            "values_sealed_elsewhere": c.values_sealed_elsewhere,
            "keys_scanned": c.keys_scanned,
            "scan_seconds": (c.seconds * 100.0).round() / 100.0,
        }),
        evidence: json!({
            "phi_patterns": patterns,
            "phi_patterns_per_node": nodes.iter().map(|n| (n.address.clone(), n.config("enc.phi-patterns").to_owned())).collect::<BTreeMap<_, _>>(),
            "scanned_replicas": nodes.iter().filter(|n| n.coverage.is_some() && n.info("role") == "slave").map(|n| &n.address).collect::<Vec<_>>(),
            "phi_plain_fields": nodes.first().map(|n| n.config("enc.phi-plain-fields")),
            "primaries_scanned": nodes.iter().filter(|n| n.coverage.is_some()).map(|n| &n.address).collect::<Vec<_>>(),
            "databases_scanned": nodes.iter().filter_map(|n| n.coverage.as_ref().map(|c| (n.address.clone(), c.databases.clone()))).collect::<BTreeMap<_, _>>(),
            "method": "ENC.COVERAGE on every primary and database: a SCAN step in the server that counts values by their envelope header; no key name or value leaves the server",
        }),
    }
}

fn phi_ttl(nodes: &[Node]) -> Check {
    let c = total_coverage(nodes);
    let first = nodes.first();
    let bound = |name: &str| {
        first
            .map(|n| n.config(name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (min, max, default) = (
        bound("enc.phi-ttl-min"),
        bound("enc.phi-ttl-max"),
        bound("enc.phi-ttl-default"),
    );
    let differing = differing(
        nodes,
        &["enc.phi-ttl-min", "enc.phi-ttl-max", "enc.phi-ttl-default"],
    );
    let (status, summary) = if let Some(name) = differing.first() {
        (
            Status::Fail,
            format!("the nodes differ in {name}: keys are held to other bounds on some nodes"),
        )
    } else if c.phi_keys_without_ttl > 0 || c.phi_keys_ttl_over_max > 0 {
        (
            Status::Fail,
            format!(
                "{} of {} PHI keys have no time to live, {} expire later than enc.phi-ttl-max",
                c.phi_keys_without_ttl, c.phi_keys, c.phi_keys_ttl_over_max
            ),
        )
    } else if max == 0 {
        (
            Status::Warn,
            format!(
                "every one of {} PHI keys expires, but enc.phi-ttl-max is not set",
                c.phi_keys
            ),
        )
    } else {
        (
            Status::Pass,
            format!(
                "every one of {} PHI keys expires within enc.phi-ttl-max",
                c.phi_keys
            ),
        )
    };
    Check {
        id: "phi-ttl",
        title: "PHI expires on time",
        hipaa: &["164.312(a)(1)"],
        status,
        summary,
        figures: json!({
            "phi_keys": c.phi_keys,
            "phi_keys_without_ttl": c.phi_keys_without_ttl,
            "phi_keys_ttl_over_max": c.phi_keys_ttl_over_max,
        }),
        evidence: json!({
            "enc.phi-ttl-min": min,
            "enc.phi-ttl-max": max,
            "enc.phi-ttl-default": default,
        }),
    }
}

fn phi_access(nodes: &[Node]) -> Check {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut per_node = BTreeMap::new();
    let (mut readers, mut writers) = (Vec::new(), Vec::new());
    // With one server, findings need not say which.
    let on = |n: &Node| {
        if nodes.len() > 1 {
            format!(" on {}", n.address)
        } else {
            String::new()
        }
    };
    for n in nodes {
        let mut users = Vec::new();
        for u in &n.users {
            if u.enabled && !u.checked {
                problems.push(format!(
                    "the permissions of user '{}'{} could not be checked (ACL DRYRUN refused, or a name that is not UTF-8)",
                    u.name,
                    on(n)
                ));
            }
            if u.enabled && !u.nopass && u.empty_password {
                problems.push(format!("user '{}'{} has an empty password", u.name, on(n)));
            }
            if u.enabled && u.nopass {
                problems.push(format!(
                    "user '{}'{} has no password (nopass)",
                    u.name,
                    on(n)
                ));
            }
            if u.enabled && u.name == "default" && (u.phi_read || u.phi_write) && !u.nopass {
                warnings.push(format!(
                    "the shared user 'default'{} holds PHI permission",
                    on(n)
                ));
            }
            if u.enabled && u.phi_read && !readers.contains(&u.name) {
                readers.push(u.name.clone());
            }
            if u.enabled && u.phi_write && !writers.contains(&u.name) {
                writers.push(u.name.clone());
            }
            users.push(json!({
                "name": u.name,
                "enabled": u.enabled,
                "nopass": u.nopass,
                "passwords": u.passwords,
                "all_commands": u.all_commands,
                "phi_read": u.phi_read,
                "phi_write": u.phi_write,
                "checked": u.checked,
            }));
        }
        per_node.insert(n.address.clone(), users);
    }
    let all_commands: Vec<&str> = nodes
        .iter()
        .flat_map(|n| &n.users)
        .filter(|u| u.enabled && u.all_commands)
        .map(|u| u.name.as_str())
        .collect();
    let default_user = nodes
        .first()
        .and_then(|n| n.users.iter().find(|u| u.name == "default"))
        .map(|u| json!({ "enabled": u.enabled, "nopass": u.nopass, "phi_read": u.phi_read, "phi_write": u.phi_write }));
    let (status, _) = verdict(problems.clone(), warnings.clone());
    let summary = match problems.first().or(warnings.first()) {
        Some(first) => format!(
            "{first}{}; PHI readers: {}",
            if problems.len() + warnings.len() > 1 {
                format!(" (and {} more)", problems.len() + warnings.len() - 1)
            } else {
                String::new()
            },
            names(&readers)
        ),
        None => format!(
            "every enabled user has a password; PHI readers: {}; PHI writers: {}",
            names(&readers),
            names(&writers)
        ),
    };
    Check {
        id: "phi-access",
        title: "Only named, authenticated users read and write PHI",
        hipaa: &["164.312(a)(1)", "164.312(a)(2)(i)", "164.312(d)"],
        status,
        summary,
        figures: json!({
            "users_phi_read": readers,
            "users_phi_write": writers,
            "users_all_commands": all_commands,
            "users_without_password": nodes.iter().flat_map(|n| &n.users).filter(|u| u.enabled && (u.nopass || u.empty_password)).map(|u| &u.name).collect::<Vec<_>>(),
        }),
        evidence: json!({
            "default_user": default_user,
            "users": per_node,
            "problems": problems,
            "warnings": warnings,
            "method": "ACL LIST, and ACL DRYRUN of ENC.PHI READ and WRITE on a key of each PHI pattern",
        }),
    }
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

/// A check's status from what failed and what only warns, and its findings, failures first.
fn verdict(fails: Vec<String>, warns: Vec<String>) -> (Status, Vec<String>) {
    let status = if !fails.is_empty() {
        Status::Fail
    } else if !warns.is_empty() {
        Status::Warn
    } else {
        Status::Pass
    };
    let mut lines = fails;
    lines.extend(warns);
    (status, lines)
}

/// Evaluates `f` on every node: the worst status, every node's findings and evidence.
fn per_node(
    nodes: &[Node],
    f: impl Fn(&Node, &mut Findings) -> Value,
) -> (Status, Vec<String>, Value) {
    let mut findings = Findings::default();
    let mut evidence = BTreeMap::new();
    for n in nodes {
        // With one server, findings need not say which.
        findings.node = if nodes.len() > 1 {
            format!(" ({})", n.address)
        } else {
            String::new()
        };
        evidence.insert(n.address.clone(), f(n, &mut findings));
    }
    let (status, lines) = verdict(findings.fails, findings.warns);
    (status, lines, json!(evidence))
}

#[derive(Default)]
struct Findings {
    node: String,
    fails: Vec<String>,
    warns: Vec<String>,
}

impl Findings {
    fn fail(&mut self, what: String) {
        let line = format!("{what}{}", self.node);
        if !self.fails.contains(&line) {
            self.fails.push(line);
        }
    }

    fn warn(&mut self, what: String) {
        let line = format!("{what}{}", self.node);
        if !self.warns.contains(&line) {
            self.warns.push(line);
        }
    }
}

fn summary_of(lines: &[String], fine: &str) -> String {
    match lines {
        [] => fine.to_owned(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

fn transport(nodes: &[Node]) -> Check {
    let (status, lines, evidence) = per_node(nodes, |n, f| {
        let tls_port = n.config("tls-port");
        let port = n.config("port");
        let require_tls = n.config("enc.phi-require-tls") == "yes";
        if tls_port.is_empty() || tls_port == "0" {
            f.fail("TLS is off (tls-port 0)".into());
        }
        if port != "0" && !port.is_empty() {
            if require_tls {
                f.warn(format!(
                    "the plaintext port {port} is open (PHI refused on it by enc.phi-require-tls)"
                ));
            } else {
                f.fail(format!(
                    "the plaintext port {port} is open and enc.phi-require-tls is no"
                ));
            }
        }
        let protocols = n.config("tls-protocols");
        if protocols
            .split_whitespace()
            .any(|p| p.eq_ignore_ascii_case("TLSv1") || p.eq_ignore_ascii_case("TLSv1.1"))
        {
            f.fail(format!("tls-protocols allows {protocols}"));
        }
        if n.config("tls-auth-clients") == "no" {
            f.warn("tls-auth-clients is no: clients present no certificate".into());
        }
        if n.config("tls-replication") != "yes" {
            f.warn(
                "tls-replication is no: replication travels in clear (PHI in it is sealed)".into(),
            );
        }
        if n.config("cluster-enabled") == "yes" && n.config("tls-cluster") != "yes" {
            f.warn("tls-cluster is no: the cluster bus travels in clear".into());
        }
        json!({
            "port": port,
            "tls-port": tls_port,
            "tls-auth-clients": n.config("tls-auth-clients"),
            "tls-replication": n.config("tls-replication"),
            "tls-cluster": n.config("tls-cluster"),
            "tls-protocols": protocols,
            "enc.phi-require-tls": n.config("enc.phi-require-tls"),
            "cluster-enabled": n.config("cluster-enabled"),
        })
    });
    Check {
        id: "transport",
        title: "PHI travels only over TLS",
        hipaa: &[
            "164.312(e)(1)",
            "164.312(e)(2)(i)",
            "164.312(e)(2)(ii)",
            "164.312(d)",
        ],
        status,
        summary: summary_of(
            &lines,
            "TLS only: plaintext port closed, clients authenticated by certificate",
        ),
        figures: json!({ "findings": lines }),
        evidence,
    }
}

/// A persistence file's mode and owner, and whether anyone may read it (its mode lets others
/// read and its directory lets others in), where this machine can see it.
fn file_facts(path: &std::path::Path) -> Value {
    use std::os::unix::fs::MetadataExt;
    let dir_open = path
        .parent()
        .and_then(|d| std::fs::metadata(d).ok())
        .is_some_and(|d| d.mode() & 0o001 != 0);
    match std::fs::metadata(path) {
        Ok(m) => json!({
            "mode": format!("{:04o}", m.mode() & 0o7777),
            "uid": m.uid(),
            "anyone_can_read": m.mode() & 0o004 != 0 && dir_open,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            json!("absent or not visible from here")
        }
        Err(_) => json!("not readable from here"),
    }
}

fn text_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn at_rest(nodes: &[Node]) -> Check {
    let (status, lines, evidence) = per_node(nodes, |n, f| {
        if n.info("enc_algorithm") != "XAES-256-GCM" || n.info("enc_envelope_format") != "1" {
            f.fail(format!(
                "unexpected envelope format {} / {}",
                n.info("enc_envelope_format"),
                n.info("enc_algorithm")
            ));
        }
        let provider = n.info("enc_provider");
        let key_mode = n.info("enc_master_key_file_mode");
        if provider == "file" {
            match u32::from_str_radix(key_mode, 8) {
                Ok(mode) if mode & 0o077 != 0 => f.fail(format!(
                    "the master key file has mode {key_mode}: others can read it"
                )),
                Ok(_) => {}
                Err(_) => f.warn("the master key file's mode is unknown".into()),
            }
            if n.info("enc_master_key_file_uid") != n.info("enc_server_uid") {
                f.warn("the master key file belongs to another user than the server's".into());
            }
        }
        for name in ["enable-debug-command", "enable-module-command"] {
            match n.config(name) {
                "yes" => f.fail(format!("{name} is yes")),
                "local" => f.warn(format!("{name} is local")),
                _ => {}
            }
        }
        if n.config("protected-mode") == "no" {
            f.warn("protected-mode is no".into());
        }
        if n.config("enc.allow-plaintext-read") == "yes" {
            f.warn("enc.allow-plaintext-read is yes: ENC.GET returns plaintext it finds".into());
        }
        let dir = std::path::Path::new(n.config("dir"));
        let mut files = BTreeMap::new();
        files.insert(
            n.config("dbfilename").to_owned(),
            file_facts(&dir.join(n.config("dbfilename"))),
        );
        if n.config("appendonly") == "yes" {
            files.insert(
                n.config("appenddirname").to_owned(),
                file_facts(&dir.join(n.config("appenddirname"))),
            );
        }
        for (name, facts) in &files {
            if facts["anyone_can_read"] == true {
                f.warn(format!(
                    "anyone can read the persistence file {name} (mode {}, in a directory open to all)",
                    text_of(&facts["mode"])
                ));
            }
        }
        json!({
            "envelope_format": n.info("enc_envelope_format"),
            "algorithm": n.info("enc_algorithm"),
            "master_key_provider": provider,
            "master_key_id": n.info("enc_master_key_id"),
            "master_key_file_mode": (provider == "file").then_some(key_mode),
            "master_key_file_uid": (provider == "file").then(|| n.info("enc_master_key_file_uid")),
            "server_uid": n.info("enc_server_uid"),
            "protected-mode": n.config("protected-mode"),
            "enable-debug-command": n.config("enable-debug-command"),
            "enable-module-command": n.config("enable-module-command"),
            "enable-protected-configs": n.config("enable-protected-configs"),
            "enc.allow-plaintext-read": n.config("enc.allow-plaintext-read"),
            "appendonly": n.config("appendonly"),
            "persistence_files": files,
        })
    });
    Check {
        id: "at-rest",
        title: "Stored PHI is encrypted with a protected key",
        hipaa: &["164.312(a)(2)(iv)", "164.312(c)(1)"],
        status,
        summary: summary_of(
            &lines,
            "XAES-256-GCM envelopes; master key protected; debug and module commands off",
        ),
        figures: json!({ "findings": lines }),
        evidence,
    }
}

fn keys(nodes: &[Node], now: u64, limits: &Limits) -> Check {
    let Some(first) = nodes.first() else {
        return none("keys", "Data keys rotate", &["164.312(a)(2)(iv)"]);
    };
    let configured = first
        .config("enc.keyring-rotate-after")
        .parse::<u64>()
        .unwrap_or(0);
    let limit = limits.max_key_age.unwrap_or(if configured > 0 {
        configured
    } else {
        365 * DAY
    });
    let found = total_coverage(nodes).versions;
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut rings = Vec::new();
    for ring in &first.keyrings {
        let last_rotation = ring.versions.iter().map(|v| v.created).max().unwrap_or(0);
        let mut versions = Vec::new();
        for v in &ring.versions {
            let age = now.saturating_sub(v.created);
            let values = found
                .get(&(ring.name.clone(), v.version))
                .copied()
                .unwrap_or(0);
            let active = v.state == "active";
            if active && age > limit {
                let what = format!(
                    "{} version {} is {} days old (limit {} days)",
                    ring.name,
                    v.version,
                    days(age),
                    days(limit)
                );
                if v.primary {
                    fails.push(format!("{what}, and seals new values"));
                } else if values > 0 {
                    warns.push(format!("{what}, and {values} values are still under it"));
                }
            }
            if active && !v.available {
                warns.push(format!(
                    "{} version {} is not available on {}",
                    ring.name, v.version, first.address
                ));
            }
            versions.push(json!({
                "version": v.version,
                "state": v.state,
                "primary": v.primary,
                "created": v.created,
                "age_days": days(age),
                "values_found": values,
                // §1.3: a data key's nonce budget is 2^48 values.
                "nonce_budget_used": values as f64 / 2f64.powi(48),
            }));
        }
        rings.push(json!({
            "name": ring.name,
            "last_rotation": last_rotation,
            "days_since_rotation": days(now.saturating_sub(last_rotation)),
            "versions": versions,
        }));
    }
    let digests: BTreeMap<&str, &str> = nodes
        .iter()
        .map(|n| (n.address.as_str(), n.info("enc_keyring_digest")))
        .collect();
    let mut distinct: Vec<&&str> = digests.values().collect();
    distinct.dedup();
    if distinct.len() > 1 {
        fails.push("the nodes hold different keyrings (enc_keyring_digest differs)".into());
    }
    let (status, lines) = verdict(fails, warns);
    Check {
        id: "keys",
        title: "Data keys rotate and stay within their limits",
        hipaa: &["164.312(a)(2)(iv)"],
        status,
        summary: summary_of(
            &lines,
            &format!(
                "{} keyring(s); every active primary version is younger than {} days",
                first.keyrings.len(),
                days(limit)
            ),
        ),
        figures: json!({
            "keyrings": first.keyrings.len(),
            "max_key_age_days": days(limit),
            "findings": lines,
        }),
        evidence: json!({
            "keyrings": rings,
            "enc.keyring-rotate-after": configured,
            "enc.keyring-rotate-after-values": first.config("enc.keyring-rotate-after-values"),
            "keyring_digest": digests,
            "nonce_budget": "2^48 values per data key version (docs/FORMAT.md §1.3)",
        }),
    }
}

fn none(id: &'static str, title: &'static str, hipaa: &'static [&'static str]) -> Check {
    Check {
        id,
        title,
        hipaa,
        status: Status::NotApplicable,
        summary: "no server was read".into(),
        figures: json!({}),
        evidence: json!({}),
    }
}

fn audit(nodes: &[Node], facts: &[AuditFacts]) -> Check {
    let (mut status, mut lines, evidence) = per_node(nodes, |n, f| {
        if n.info("enc_audit_log") != "on" {
            f.fail("the audit log is off".into());
        }
        if n.info("enc_audit_failing") == "yes" {
            f.fail(format!(
                "the audit log is failing ({} write errors)",
                n.info("enc_audit_write_errors")
            ));
        }
        if n.config("enc.audit-fail-closed") != "yes" {
            f.warn(
                "enc.audit-fail-closed is no: PHI is served while the log cannot be written".into(),
            );
        }
        if n.config("enc.audit-hash-keys") != "yes" {
            f.warn("enc.audit-hash-keys is no: key names are logged in clear".into());
        }
        json!({
            "enc_audit_log": n.info("enc_audit_log"),
            "enc_audit_failing": n.info("enc_audit_failing"),
            "enc_audit_records": n.info("enc_audit_records"),
            "enc_audit_write_errors": n.info("enc_audit_write_errors"),
            "enc_audit_head": n.info("enc_audit_head"),
            "enc.audit-fail-closed": n.config("enc.audit-fail-closed"),
            "enc.audit-hash-keys": n.config("enc.audit-hash-keys"),
        })
    });
    let mut logs = Vec::new();
    let mut fails = Vec::new();
    for a in facts {
        let named = a
            .node
            .as_deref()
            .map_or(String::new(), |n| format!(" of {n}"));
        let (verified, head, first_bad) = match &a.verified {
            None => {
                status = status.max(Status::Warn);
                lines.push(format!(
                    "the audit log{named} given was not verified: no --master-key"
                ));
                (Value::Null, None, Value::Null)
            }
            Some(v) => {
                if let Some((line, why)) = &v.first_bad {
                    fails.push(format!(
                        "the audit log{named}'s chain breaks at line {line}: {why}"
                    ));
                } else if v.good == 0 {
                    fails.push(format!("the audit log{named} given holds no records"));
                }
                let bad = v
                    .first_bad
                    .as_ref()
                    .map(|(line, why)| json!({ "line": line, "reason": why }));
                (json!(v.good), v.head.clone(), json!(bad))
            }
        };
        logs.push(json!({
            "node": a.node,
            "files": a.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "records_verified": verified,
            "first_bad": first_bad,
            "head": head,
            "records_by_event": a.events,
            "denials": a.denials,
            "period_start_ms": a.first_ms,
            "period_end_ms": a.last_ms,
        }));
    }
    // Every node that keeps a log must have its log given, reaching the head it had when read.
    let mut reached = BTreeMap::new();
    if facts.iter().any(|a| a.verified.is_some()) {
        for n in nodes.iter().filter(|n| n.info("enc_audit_log") == "on") {
            let head = n.info("enc_audit_head");
            let ok = facts
                .iter()
                .any(|a| a.node.as_deref().is_none_or(|x| x == n.address) && a.macs.contains(head));
            if !ok {
                fails.push(format!(
                    "the audit log of {} was not given, or does not reach the chain head it had when read: records are missing from its end, or it is another server's log",
                    n.address
                ));
            }
            reached.insert(n.address.clone(), ok);
        }
    }
    if !fails.is_empty() {
        status = Status::Fail;
        fails.extend(lines);
        lines = fails;
    }
    Check {
        id: "audit",
        title: "PHI access is recorded in a tamper-evident log",
        hipaa: &["164.312(b)", "164.312(c)(1)"],
        status,
        summary: summary_of(&lines, "audit log on, fail-closed, not failing"),
        figures: json!({ "findings": lines, "logs": logs, "reaches_server_head": reached }),
        evidence,
    }
}

fn backups(records: Option<&RecordFacts>, now: u64, limits: &Limits) -> Check {
    let hipaa: &'static [&'static str] = &["164.312(a)(2)(ii)", "164.312(c)(1)"];
    let Some(r) = records else {
        return Check {
            id: "backups",
            title: "Backups are verified and restores are drilled",
            hipaa,
            status: Status::Fail,
            summary:
                "no records given (--records): nothing shows a verified backup or a restore drill"
                    .into(),
            figures: json!({}),
            evidence: json!({}),
        };
    };
    let kind = |rec: &crate::records::Read| rec.fields["kind"].as_str().unwrap_or("").to_owned();
    let last = |k: &str| {
        r.records
            .iter()
            .rev()
            .find(|rec| kind(rec) == k && rec.authentic != Some(false))
    };
    let shown = |rec: Option<&crate::records::Read>| {
        rec.map(|rec| {
            let time = rec.fields["time"].as_u64().unwrap_or(0);
            json!({
                "time": time,
                "age_days": days(now.saturating_sub(time)),
                "seconds": rec.fields["seconds"],
                "result": rec.fields["result"],
                "detail": rec.fields["detail"],
                "authenticated": rec.authentic,
            })
        })
    };
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let inauthentic = r
        .records
        .iter()
        .filter(|rec| rec.authentic == Some(false))
        .count();
    if inauthentic > 0 {
        fails.push(format!(
            "{inauthentic} record(s) fail their MAC: edited, or made under another master key"
        ));
    }
    if r.records.iter().any(|rec| rec.authentic.is_none()) {
        warns.push("the records were not authenticated: no --master-key".into());
    }
    for (k, what, limit) in [
        (
            crate::records::BACKUP_VERIFIED,
            "backup verification",
            limits.max_backup_age,
        ),
        (
            crate::records::RESTORE_DRILL,
            "restore drill",
            limits.max_drill_age,
        ),
    ] {
        match last(k) {
            None => fails.push(format!("no {what} recorded")),
            Some(rec) => {
                let age = now.saturating_sub(rec.fields["time"].as_u64().unwrap_or(0));
                if rec.fields["result"] != "ok" {
                    fails.push(format!("the last {what} failed"));
                } else if age > limit {
                    fails.push(format!(
                        "the last {what} is {} days old (limit {} days)",
                        days(age),
                        days(limit)
                    ));
                }
            }
        }
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for rec in &r.records {
        let result = rec.fields["result"].as_str().unwrap_or("unreadable");
        *counts.entry(format!("{} {result}", kind(rec))).or_default() += 1;
    }
    let (status, lines) = verdict(fails, warns);
    let drill = shown(last(crate::records::RESTORE_DRILL));
    Check {
        id: "backups",
        title: "Backups are verified and restores are drilled",
        hipaa,
        status,
        summary: summary_of(
            &lines,
            &format!(
                "backup verified {} days ago; restore drilled {} days ago in {} s",
                shown(last(crate::records::BACKUP_VERIFIED))
                    .map_or(Value::Null, |v| v["age_days"].clone()),
                drill
                    .as_ref()
                    .map_or(Value::Null, |v| v["age_days"].clone()),
                drill.as_ref().map_or(Value::Null, |v| v["seconds"].clone()),
            ),
        ),
        figures: json!({
            "last_backup": shown(last(crate::records::BACKUP)),
            "last_backup_verified": shown(last(crate::records::BACKUP_VERIFIED)),
            "last_restore_drill": drill,
            "findings": lines,
        }),
        evidence: json!({
            "files": r.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "records": counts,
            "record_count": r.records.len(),
            "first_seq": r.records.first().map(|rec| rec.fields["seq"].clone()),
            "head": r.head,
            "max_backup_age_days": days(limits.max_backup_age),
            "max_drill_age_days": days(limits.max_drill_age),
        }),
    }
}

fn guard(nodes: &[Node]) -> Check {
    let counters = [
        "enc_errors_guard",
        "enc_errors_phi_placement",
        "enc_errors_phi_ttl",
        "enc_errors_phi_tls",
        "enc_errors_noperm",
    ];
    let (status, lines, evidence) = per_node(nodes, |n, f| {
        let patterns = !n.phi_patterns().is_empty();
        if !patterns {
            f.warn("enc.phi-patterns is empty: the guard has nothing to protect".into());
        } else if n.config("enc.phi-guard") != "yes" {
            f.fail("enc.phi-guard is no: plain commands can write and copy PHI".into());
        }
        let refused: BTreeMap<&str, u64> = counters
            .iter()
            .map(|c| (*c, n.info(c).parse().unwrap_or(0)))
            .collect();
        json!({
            "enc.phi-guard": n.config("enc.phi-guard"),
            "active": patterns && n.config("enc.phi-guard") == "yes",
            "refusals": refused,
        })
    });
    let refusals: u64 = nodes
        .iter()
        .flat_map(|n| {
            counters
                .iter()
                .map(|c| n.info(c).parse::<u64>().unwrap_or(0))
        })
        .sum();
    Check {
        id: "guard",
        title: "Plain commands cannot write or copy PHI",
        hipaa: &["164.312(a)(1)", "164.312(c)(1)"],
        status,
        summary: summary_of(
            &lines,
            &format!("the guard is active; {refusals} refusals since start"),
        ),
        figures: json!({ "refusals_since_start": refusals, "findings": lines }),
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_down() {
        assert_eq!(percent(97, 100), 97.0);
        assert_eq!(percent(9999, 10000), 99.9);
        assert_eq!(percent(0, 0), 100.0);
        assert_eq!(percent(1, 3), 33.3);
    }
}
