//! `redis-enc cluster check`: every node of a Redis Cluster, as the seed node knows them, with
//! its keyring epoch and digest (`INFO enc`), the keyring authority it names, and whether it
//! answered. Exits non-zero when a node does not answer or holds other keyrings than the rest.

use std::time::Duration;

use serde_json::json;

use crate::replication::{self, Target, Tls};

/// How long a node may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One line of `CLUSTER NODES`.
struct Listed {
    id: String,
    host: String,
    port: u16,
    primary: bool,
    failing: bool,
}

/// The nodes in a `CLUSTER NODES` reply: `<id> <ip:port@cport[,hostname]> <flags> ...`.
fn listed(text: &str) -> Vec<Listed> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            let id = words.next()?.to_owned();
            let addr = words.next()?;
            let flags = words.next()?;
            let hostport = addr.split(['@', ',']).next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some(Listed {
                id,
                host: host.to_owned(),
                port: port.parse().ok()?,
                primary: flags.split(',').any(|f| f == "master"),
                failing: flags.split(',').any(|f| f == "fail" || f == "fail?"),
            })
        })
        .collect()
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
    let target = Target {
        host: node.host.clone(),
        port: node.port,
        user: like.user.clone(),
        password: like.password.clone(),
    };
    let mut con = replication::connect(&target, tls, TIMEOUT)?;
    let info = String::from_utf8_lossy(&con.bulk(&["INFO", "enc"])?).into_owned();
    let get = |name: &str| {
        field(&info, name)
            .map(str::to_owned)
            .ok_or_else(|| format!("INFO enc has no {name}: is the module loaded?"))
    };
    Ok((
        get("enc_keyring_epoch")?,
        get("enc_keyring_digest")?,
        get("enc_keyrings")?,
        get("enc_cluster_keyring_authority")?,
    ))
}

/// Checks every node the seed lists; `Err` names what is wrong after the report is printed.
pub fn run_check(seed: &Target, tls: Option<&Tls>, json: bool) -> Result<(), String> {
    let mut con = replication::connect(seed, tls, TIMEOUT)?;
    let nodes = String::from_utf8_lossy(&con.bulk(&["CLUSTER", "NODES"])?).into_owned();
    let mut seen: Vec<Seen> = listed(&nodes)
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
                        "role": if n.primary { "primary" } else { "replica" },
                        "epoch": epoch, "digest": digest, "keyrings": keyrings,
                        "authority": authority,
                    }),
                    Err(why) => json!({
                        "id": n.id, "addr": format!("{}:{}", n.host, n.port),
                        "role": if n.primary { "primary" } else { "replica" },
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
            let role = match (n.primary, n.failing) {
                (_, true) => "failing",
                (true, false) => "primary",
                (false, false) => "replica",
            };
            match &s.said {
                Ok((epoch, digest, keyrings, authority)) => {
                    say!("{addr:<22} {role:<8} {epoch:>6} {digest:<17} {keyrings:>8}  {authority}")
                }
                Err(why) => say!("{addr:<22} {role:<8} no answer: {why}"),
            }
        }
    }
    let mut wrong = Vec::new();
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
        let nodes = listed(text);
        let seen: Vec<_> = nodes
            .iter()
            .map(|n| (n.id.as_str(), n.host.as_str(), n.port, n.primary, n.failing))
            .collect();
        assert_eq!(
            seen,
            [
                ("07c3", "127.0.0.1", 30004, false, false),
                ("e7d1", "10.0.0.1", 30001, true, false),
                ("67ed", "10.0.0.2", 30002, true, true),
            ]
        );
    }
}
