//! What the report reads from each server: `INFO`, the configs it checks, the ACL users and
//! their PHI permissions, the keyrings, and the coverage counts of `ENC.COVERAGE` (counts only:
//! no key name or value reaches the tool).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::replication::{self, Connection, Reply, Target, Tls};

/// How long a server may take to answer one command.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The configs the checks read (never `requirepass` or `masterauth`, which hold passwords).
const CONFIGS: &[&str] = &[
    "port",
    "tls-port",
    "tls-auth-clients",
    "tls-replication",
    "tls-cluster",
    "tls-protocols",
    "protected-mode",
    "enable-debug-command",
    "enable-module-command",
    "enable-protected-configs",
    "dir",
    "dbfilename",
    "appendonly",
    "appenddirname",
    "cluster-enabled",
];

/// One ACL user as `ACL LIST` shows it, with what `ACL DRYRUN` says of its PHI permissions.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    pub passwords: usize,
    /// One of its passwords is the empty string (`>` with nothing after it).
    pub empty_password: bool,
    pub all_commands: bool,
    pub phi_read: bool,
    pub phi_write: bool,
    /// False when `ACL DRYRUN` could not answer for this user (a name that is not UTF-8, an
    /// error): its PHI permissions are then taken as held.
    pub checked: bool,
}

/// The counts of a whole-keyspace `ENC.COVERAGE` scan.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub databases: Vec<u32>,
    pub keys_scanned: u64,
    pub phi_keys: u64,
    pub phi_values_sealed: u64,
    pub phi_values_plain: u64,
    pub phi_fields_plain_by_policy: u64,
    pub phi_keys_other_type: u64,
    pub phi_keys_without_ttl: u64,
    pub phi_keys_ttl_over_max: u64,
    pub values_sealed_elsewhere: u64,
    /// Envelopes found per (keyring, version).
    pub versions: BTreeMap<(String, u64), u64>,
    pub seconds: f64,
}

impl Coverage {
    pub fn add(&mut self, other: &Coverage) {
        self.keys_scanned += other.keys_scanned;
        self.phi_keys += other.phi_keys;
        self.phi_values_sealed += other.phi_values_sealed;
        self.phi_values_plain += other.phi_values_plain;
        self.phi_fields_plain_by_policy += other.phi_fields_plain_by_policy;
        self.phi_keys_other_type += other.phi_keys_other_type;
        self.phi_keys_without_ttl += other.phi_keys_without_ttl;
        self.phi_keys_ttl_over_max += other.phi_keys_ttl_over_max;
        self.values_sealed_elsewhere += other.values_sealed_elsewhere;
        for (version, n) in &other.versions {
            *self.versions.entry(version.clone()).or_default() += n;
        }
        self.seconds = self.seconds.max(other.seconds);
    }
}

/// One version of a keyring, as `ENC.KEYRING INFO` shows it.
#[derive(Debug, Clone)]
pub struct Version {
    pub version: u64,
    pub state: String,
    pub primary: bool,
    pub created: u64,
    pub available: bool,
}

#[derive(Debug, Clone)]
pub struct Keyring {
    pub name: String,
    pub versions: Vec<Version>,
}

/// Everything read from one server.
#[derive(Debug, Clone)]
pub struct Node {
    pub address: String,
    pub info: BTreeMap<String, String>,
    pub config: BTreeMap<String, String>,
    pub users: Vec<User>,
    pub keyrings: Vec<Keyring>,
    pub coverage: Option<Coverage>,
    pub time: u64,
}

impl Node {
    pub fn info(&self, name: &str) -> &str {
        self.info.get(name).map_or("", String::as_str)
    }

    pub fn config(&self, name: &str) -> &str {
        self.config.get(name).map_or("", String::as_str)
    }

    /// `enc.phi-patterns`, split.
    pub fn phi_patterns(&self) -> Vec<&str> {
        self.config("enc.phi-patterns").split_whitespace().collect()
    }
}

/// Progress of the coverage scans: a bar on a terminal, else a line every ten seconds.
pub struct Progress {
    bar: ProgressBar,
    total: u64,
    done: u64,
    last_line: Instant,
    started: Instant,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "scanning keys [{bar:30}] {pos}/{len} keys ({percent}%), eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            total,
            done: 0,
            last_line: Instant::now(),
            started: Instant::now(),
        }
    }

    fn advance(&mut self, keys: u64) {
        self.done += keys;
        self.bar.set_position(self.done);
        if self.bar.is_hidden() && self.last_line.elapsed() >= Duration::from_secs(10) {
            self.last_line = Instant::now();
            eprintln!(
                "redis-enc report: scanned {} of about {} keys in {:.0} s",
                self.done,
                self.total,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `INFO` fields (`name:value` lines) of every section asked.
fn read_info(con: &mut Connection, sections: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let mut fields = BTreeMap::new();
    for section in sections {
        let text = String::from_utf8_lossy(&con.bulk(&["INFO", section])?).into_owned();
        for line in text.lines() {
            match line.split_once(':') {
                // One line per module; the report names this one's version.
                Some(("module", value)) if !value.starts_with("name=enc,") => {}
                Some((name, value)) => {
                    fields.insert(name.to_owned(), value.trim().to_owned());
                }
                None => {}
            }
        }
    }
    Ok(fields)
}

/// A `name value ...` reply as a map.
fn pairs(reply: &Reply) -> BTreeMap<String, String> {
    reply
        .items()
        .chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| (p[0].text(), p[1].text()))
        .collect()
}

fn read_config(con: &mut Connection) -> Result<BTreeMap<String, String>, String> {
    let mut config = BTreeMap::new();
    for name in CONFIGS.iter().copied().chain(["enc.*"]) {
        config.extend(pairs(&con.call(&["CONFIG", "GET", name])?));
    }
    Ok(config)
}

/// A key name that each glob pattern matches, for `ACL DRYRUN`: `*` empty, `?` and a class
/// by one character, escapes taken literally.
pub fn example_key(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => {}
            '?' => out.push('x'),
            '\\' => out.extend(chars.next()),
            '[' => {
                let class: String = chars.by_ref().take_while(|&c| c != ']').collect();
                let class = class.strip_prefix('^').map_or(class.as_str(), |_| "");
                out.push(class.chars().next().unwrap_or('x'));
            }
            c => out.push(c),
        }
    }
    out
}

/// How `ACL LIST` shows the empty password: the SHA-256 of nothing.
const EMPTY_PASSWORD: &str = "#e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Key names to ask `ACL DRYRUN` about for a PHI pattern and a user's key patterns: names the
/// PHI pattern matches, built from it (`*` as nothing, `x` and `0`) and from each of the user's
/// patterns that yields one.
fn keys_to_try(phi_pattern: &str, user_patterns: &[&str]) -> Vec<String> {
    let matcher = wildmatch::WildMatch::new(phi_pattern);
    let mut shapes: Vec<String> = Vec::new();
    for pattern in std::iter::once(phi_pattern).chain(user_patterns.iter().copied()) {
        for star in ["", "x", "0"] {
            shapes.push(pattern.replace('*', &format!("{star}*")));
        }
        // One pattern inside the other's first or last `*` (`user:*` and `*:ssn` meet in
        // `user:x:ssn`).
        if pattern != phi_pattern {
            for (outer, inner) in [(pattern, phi_pattern), (phi_pattern, pattern)] {
                let inner = example_key(&inner.replace('*', "x*"));
                shapes.push(outer.replacen('*', &format!("{inner}*"), 1));
                if let Some(at) = outer.rfind('*') {
                    shapes.push(format!("{}*{inner}{}", &outer[..at], &outer[at + 1..]));
                }
            }
        }
    }
    let mut keys = Vec::new();
    for shape in shapes {
        let key = example_key(&shape);
        if matcher.matches(&key) && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// The key patterns of a user's ACL rules (`~p`, `%R~p`, `%W~p`, `%RW~p`).
fn key_patterns<'a>(rules: &[&'a str]) -> Vec<&'a str> {
    rules
        .iter()
        .filter_map(|r| r.split_once('~').map(|(_, p)| p))
        .collect()
}

/// The users of `ACL LIST`, and for each, whether `ACL DRYRUN` lets it read or write PHI under
/// a key of each PHI pattern.
fn read_users(con: &mut Connection, patterns: &[&str]) -> Result<Vec<User>, String> {
    let list = con.call(&["ACL", "LIST"])?;
    let mut users = Vec::new();
    for line in list.items() {
        let (line, utf8) = match line {
            Reply::Bulk(b) => (
                String::from_utf8_lossy(b).into_owned(),
                std::str::from_utf8(b).is_ok(),
            ),
            other => (other.text(), true),
        };
        let mut words = line.split(' ');
        if words.next() != Some("user") {
            continue;
        }
        let Some(name) = words.next() else { continue };
        let rules: Vec<&str> = words.collect();
        let has = |r: &str| rules.contains(&r);
        let mut user = User {
            name: name.to_owned(),
            enabled: has("on"),
            nopass: has("nopass"),
            passwords: rules.iter().filter(|r| r.starts_with('#')).count(),
            empty_password: has(EMPTY_PASSWORD),
            all_commands: has("+@all") || has("allcommands"),
            phi_read: false,
            phi_write: false,
            checked: utf8,
        };
        let own = key_patterns(&rules);
        for pattern in patterns {
            for key in keys_to_try(pattern, &own) {
                for (op, held) in [("READ", &mut user.phi_read), ("WRITE", &mut user.phi_write)] {
                    match con.call(&["ACL", "DRYRUN", name, "ENC.PHI", op, &key]) {
                        Ok(reply) => *held |= reply.text() == "OK",
                        Err(_) => user.checked = false,
                    }
                }
            }
        }
        if !user.checked {
            // What could not be asked is taken as held: the stricter answer.
            user.phi_read = true;
            user.phi_write = true;
        }
        users.push(user);
    }
    Ok(users)
}

fn read_keyrings(con: &mut Connection) -> Result<Vec<Keyring>, String> {
    let names: Vec<String> = con
        .call(&["ENC.KEYRING", "LIST"])?
        .items()
        .iter()
        .map(Reply::text)
        .collect();
    let mut rings = Vec::new();
    for name in names {
        let info = con.call(&["ENC.KEYRING", "INFO", &name])?;
        let versions = info
            .field("versions")
            .map(|v| {
                v.items()
                    .iter()
                    .map(|item| {
                        let f = pairs(item);
                        let num = |n: &str| f.get(n).and_then(|v| v.parse().ok()).unwrap_or(0);
                        Version {
                            version: num("version"),
                            state: f.get("state").cloned().unwrap_or_default(),
                            primary: num("primary") == 1,
                            created: num("created"),
                            available: num("available") == 1,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        rings.push(Keyring { name, versions });
    }
    Ok(rings)
}

/// The databases `INFO keyspace` lists, with their key counts.
pub fn databases(info: &BTreeMap<String, String>) -> Vec<(u32, u64)> {
    info.iter()
        .filter_map(|(name, value)| {
            let db = name.strip_prefix("db")?.parse().ok()?;
            let keys = value
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))?
                .parse()
                .ok()?;
            Some((db, keys))
        })
        .collect()
}

/// Scans every database of a server with `ENC.COVERAGE`.
fn scan(
    con: &mut Connection,
    databases: &[(u32, u64)],
    count: u32,
    progress: &mut Progress,
) -> Result<Coverage, String> {
    let started = Instant::now();
    let mut total = Coverage::default();
    let count = count.to_string();
    for &(db, _) in databases {
        if databases.len() > 1 || db != 0 {
            con.call(&["SELECT", &db.to_string()])?;
        }
        total.databases.push(db);
        let mut cursor = "0".to_owned();
        loop {
            let reply = con.call(&["ENC.COVERAGE", &cursor, "COUNT", &count])?;
            let num = |name: &str| {
                reply
                    .field(name)
                    .and_then(Reply::int)
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0)
            };
            let mut step = Coverage {
                keys_scanned: num("keys"),
                phi_keys: num("phi-keys"),
                phi_values_sealed: num("phi-values-sealed"),
                phi_values_plain: num("phi-values-plain"),
                phi_fields_plain_by_policy: num("phi-fields-plain-by-policy"),
                phi_keys_other_type: num("phi-keys-other-type"),
                phi_keys_without_ttl: num("phi-keys-without-ttl"),
                phi_keys_ttl_over_max: num("phi-keys-ttl-over-max"),
                values_sealed_elsewhere: num("values-sealed-elsewhere"),
                ..Coverage::default()
            };
            for v in reply
                .field("versions")
                .map(Reply::items)
                .unwrap_or_default()
            {
                if let [ring, version, n] = v.items() {
                    let version = version.int().and_then(|n| u64::try_from(n).ok());
                    let n = n.int().and_then(|n| u64::try_from(n).ok());
                    if let (Some(version), Some(n)) = (version, n) {
                        step.versions.insert((ring.text(), version), n);
                    }
                }
            }
            progress.advance(step.keys_scanned);
            total.add(&step);
            cursor = reply.field("cursor").map(Reply::text).unwrap_or_default();
            if cursor == "0" || cursor.is_empty() {
                break;
            }
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

/// A server to read, and whether to scan it.
pub struct Reach<'a> {
    pub target: Target,
    pub address: String,
    pub primary: bool,
    pub tls: Option<&'a Tls>,
}

/// Reads one server. `scan_count` is the `COUNT` of each coverage step; in a cluster, primaries
/// only are scanned (a replica holds the same values).
pub fn read_node(reach: &Reach, scan_count: u32, progress: &mut Progress) -> Result<Node, String> {
    let mut con = replication::connect(&reach.target, reach.tls, TIMEOUT)?;
    let info = read_info(
        &mut con,
        &["server", "replication", "keyspace", "modules", "enc"],
    )?;
    if !info.contains_key("enc_provider") {
        return Err(format!(
            "{}: INFO enc is empty: is the redis-enc module loaded?",
            reach.address
        ));
    }
    let config = read_config(&mut con)?;
    let patterns: Vec<String> = config
        .get("enc.phi-patterns")
        .map(|p| p.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let users = read_users(&mut con, &patterns)?;
    let keyrings = read_keyrings(&mut con)?;
    let time = con
        .call(&["TIME"])?
        .items()
        .first()
        .and_then(Reply::int)
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(0);
    let coverage = if reach.primary {
        Some(scan(&mut con, &databases(&info), scan_count, progress)?)
    } else {
        None
    };
    Ok(Node {
        address: reach.address.clone(),
        info,
        config,
        users,
        keyrings,
        coverage,
        time,
    })
}

/// How many keys the primaries hold (the progress display's total).
pub fn key_total(reach: &[Reach]) -> u64 {
    reach
        .iter()
        .filter(|r| r.primary)
        .filter_map(|r| {
            let mut con = replication::connect(&r.target, r.tls, TIMEOUT).ok()?;
            let info = read_info(&mut con, &["keyspace"]).ok()?;
            Some(databases(&info).iter().map(|(_, n)| n).sum::<u64>())
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_keys_match_their_patterns() {
        assert_eq!(example_key("patient:*"), "patient:");
        assert_eq!(example_key("p?:[ab]*"), "px:a");
        assert_eq!(example_key("a\\*b"), "a*b");
        assert_eq!(example_key("[^x]"), "x");
    }

    #[test]
    fn keys_to_try_follow_the_users_patterns_into_the_phi_pattern() {
        assert_eq!(
            keys_to_try("patient:*", &[]),
            ["patient:", "patient:x", "patient:0"]
        );
        let keys = keys_to_try(
            "patient:*",
            &["patient:1*", "patient:?*", "patient:[0-9]*", "app:*"],
        );
        for wanted in [
            "patient:1",
            "patient:x",
            "patient:0",
            "patient:1x",
            "patient:xx",
        ] {
            assert!(keys.contains(&wanted.to_owned()), "{wanted} in {keys:?}");
        }
        assert!(!keys.iter().any(|k| k.starts_with("app:")));
        let keys = keys_to_try("*:ssn", &["user:*"]);
        assert!(keys.contains(&"user:x:ssn".to_owned()), "{keys:?}");
        let keys = keys_to_try("patient:*", &["*:42"]);
        assert!(keys.contains(&"patient:x:42".to_owned()), "{keys:?}");
    }

    #[test]
    fn databases_come_from_info_keyspace() {
        let info: BTreeMap<String, String> = [
            ("db0".to_owned(), "keys=5,expires=1,avg_ttl=0".to_owned()),
            ("db3".to_owned(), "keys=2,expires=0,avg_ttl=0".to_owned()),
            ("dbx".to_owned(), "keys=2".to_owned()),
        ]
        .into();
        assert_eq!(databases(&info), [(0, 5), (3, 2)]);
    }
}
