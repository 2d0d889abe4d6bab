//! `redis-enc cluster check`: every node of a Redis Cluster, as the seed node knows them, with
//! its keyring epoch and digest (`INFO enc`), the keyring authority it names, and whether it
//! answered. Exits non-zero when a node does not answer or holds other keyrings than the rest.

use std::time::Duration;

use serde_json::json;

use crate::replication::{self, Target, Tls};

mod reencrypt;
pub use reencrypt::{run as run_reencrypt, Start};

/// How long a node may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One line of `CLUSTER NODES`.
pub(crate) struct Listed {
    id: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) primary: bool,
    /// Whether it serves slots, as the node asked sees it (fields 9 and on of the line): a
    /// primary that lost its slots to a failover serves none.
    pub(crate) serves_slots: bool,
    /// `replica`, `primary`, `failing`, or `unknown` (a node in handshake, say).
    pub(crate) role: &'static str,
}

/// The nodes in a `CLUSTER NODES` reply (`<id> <ip:port@cport[,hostname]> <flags> ...`), and
/// how many non-empty lines could not be read as one.
pub(crate) fn listed(text: &str) -> (Vec<Listed>, usize) {
    let mut unreadable = 0;
    let nodes = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let node = (|| {
                let mut words = line.split(' ');
                let id = words.next()?;
                let addr = words.next()?;
                let flags: Vec<&str> = words.next()?.split(',').collect();
                // master id, ping sent, pong received, config epoch, link state, then slots.
                let serves_slots = words.nth(5).is_some_and(|slot| !slot.starts_with('['));
                let hostport = addr.split(['@', ',']).next()?;
                let (host, port) = hostport.rsplit_once(':')?;
                let printable = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic());
                if !printable(id) || !printable(host) {
                    return None;
                }
                let has = |f: &str| flags.contains(&f);
                Some(Listed {
                    id: id.to_owned(),
                    host: host.to_owned(),
                    port: port.parse().ok()?,
                    primary: has("master"),
                    serves_slots,
                    role: if has("fail") || has("fail?") {
                        "failing"
                    } else if has("master") {
                        "primary"
                    } else if has("slave") {
                        "replica"
                    } else {
                        "unknown"
                    },
                })
            })();
            if node.is_none() {
                unreadable += 1;
            }
            node
        })
        .collect();
    (nodes, unreadable)
}

impl Listed {
    pub(crate) fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// This node, reached with the seed's user and password.
    pub(crate) fn target(&self, like: &Target) -> Target {
        Target {
            host: self.host.clone(),
            port: self.port,
            user: like.user.clone(),
            password: like.password.clone(),
        }
    }
}

/// What one node said.
struct Seen {
    node: Listed,
    /// `(epoch, digest, keyrings, authority)`, or why the node did not answer.
    said: Result<(String, String, String, String), String>,
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn ask(
    node: &Listed,
    like: &Target,
    tls: Option<&Tls>,
) -> Result<(String, String, String, String), String> {
    let mut con = replication::connect(&node.target(like), tls, TIMEOUT)?;
    let info = String::from_utf8_lossy(&con.bulk(&["INFO", "enc"])?).into_owned();
    let get = |name: &str| {
        field(&info, name)
            .map(str::to_owned)
            .ok_or_else(|| format!("INFO enc has no {name}: is the module loaded?"))
    };
    let digits = |s: String| {
        (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .then_some(s)
            .ok_or_else(|| "INFO enc holds a count that is not a number".to_owned())
    };
    let digest = get("enc_keyring_digest")?;
    if digest.len() != 16 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("INFO enc holds a keyring digest that is not 16 hex digits".into());
    }
    let authority = get("enc_cluster_keyring_authority")?;
    if authority.is_empty()
        || authority.len() > 300
        || !authority.chars().all(|c| c.is_ascii_graphic())
    {
        return Err("INFO enc names no readable keyring authority".into());
    }
    Ok((
        digits(get("enc_keyring_epoch")?)?,
        digest,
        digits(get("enc_keyrings")?)?,
        authority,
    ))
}

/// Checks every node the seed lists; `Err` names what is wrong after the report is printed.
pub fn run_check(seed: &Target, tls: Option<&Tls>, json: bool) -> Result<(), String> {
    let mut con = replication::connect(seed, tls, TIMEOUT)?;
    let nodes = String::from_utf8_lossy(&con.bulk(&["CLUSTER", "NODES"])?).into_owned();
    let (listed, unreadable) = listed(&nodes);
    let mut seen: Vec<Seen> = listed
        .into_iter()
        .map(|node| {
            let said = ask(&node, seed, tls);
            Seen { node, said }
        })
        .collect();
    seen.sort_by(|a, b| {
        (!a.node.primary, &a.node.host, a.node.port).cmp(&(
            !b.node.primary,
            &b.node.host,
            b.node.port,
        ))
    });
    let states: std::collections::BTreeSet<_> = seen
        .iter()
        .filter_map(|s| {
            s.said
                .as_ref()
                .ok()
                .map(|(e, d, ..)| (e.clone(), d.clone()))
        })
        .collect();
    let silent = seen.iter().filter(|s| s.said.is_err()).count();
    if json {
        let list: Vec<_> = seen
            .iter()
            .map(|s| {
                let n = &s.node;
                match &s.said {
                    Ok((epoch, digest, keyrings, authority)) => json!({
                        "id": n.id, "addr": format!("{}:{}", n.host, n.port),
                        "role": n.role,
                        "epoch": epoch, "digest": digest, "keyrings": keyrings,
                        "authority": authority,
                    }),
                    Err(why) => json!({
                        "id": n.id, "addr": format!("{}:{}", n.host, n.port),
                        "role": n.role,
                        "error": why,
                    }),
                }
            })
            .collect();
        say!(
            "{}",
            json!({ "nodes": list, "in_step": states.len() <= 1 && silent == 0 })
        );
    } else {
        say!(
            "{:<22} {:<8} {:>6} {:<17} {:>8}  AUTHORITY",
            "NODE",
            "ROLE",
            "EPOCH",
            "DIGEST",
            "KEYRINGS"
        );
        for s in &seen {
            let n = &s.node;
            let addr = format!("{}:{}", n.host, n.port);
            let role = n.role;
            match &s.said {
                Ok((epoch, digest, keyrings, authority)) => {
                    say!("{addr:<22} {role:<8} {epoch:>6} {digest:<17} {keyrings:>8}  {authority}")
                }
                Err(why) => say!("{addr:<22} {role:<8} no answer: {why}"),
            }
        }
    }
    let mut wrong = Vec::new();
    if seen.is_empty() {
        wrong.push("the seed listed no node".to_owned());
    }
    if unreadable > 0 {
        wrong.push(format!(
            "{unreadable} line(s) of CLUSTER NODES could not be read"
        ));
    }
    if silent > 0 {
        wrong.push(format!("{silent} node(s) did not answer"));
    }
    if states.len() > 1 {
        wrong.push(format!(
            "the nodes hold {} different keyring states (see EPOCH and DIGEST); they converge \
             within a few seconds of a change, so check again, then see runbook 16",
            states.len()
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines() {
        let text = "07c3 127.0.0.1:30004@31004,host-a slave e7d1 0 1426238317239 4 connected\n\
                    e7d1 10.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460\n\
                    bad-line\n\
                    67ed 10.0.0.2:30002@31002 master,fail - 0 0 2 disconnected\n";
        let (nodes, unreadable) = listed(text);
        let seen: Vec<_> = nodes
            .iter()
            .map(|n| (n.id.as_str(), n.host.as_str(), n.port, n.primary, n.role))
            .collect();
        assert_eq!(
            seen,
            [
                ("07c3", "127.0.0.1", 30004, false, "replica"),
                ("e7d1", "10.0.0.1", 30001, true, "primary"),
                ("67ed", "10.0.0.2", 30002, true, "failing"),
            ]
        );
        assert_eq!(unreadable, 1, "bad-line");
        let serving: Vec<_> = nodes.iter().map(|n| n.serves_slots).collect();
        assert_eq!(serving, [false, true, false]);
        let (nodes, _) = listed("ab 10.0.0.1:1@2 master - 0 0 1 connected [5->-cd]\n");
        assert!(
            !nodes[0].serves_slots,
            "a migration marker is not a slot it serves"
        );
        let (_, unreadable) = listed("ab 10.0.0.1:99999@1 master - 0 0 1 connected\n");
        assert_eq!(unreadable, 1, "a port out of range");
    }
}
