//! Takes a consistent snapshot of a live server over the replication protocol, as
//! `redis-cli --rdb` does: `SYNC`, then the RDB the primary streams, written straight into the
//! encrypting writer (never to a plaintext file).

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis_enc_core::transfer::{read_sync_reply, reply_line};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// TLS to the server (`--tls`): the CA to trust (else the Mozilla roots) and an optional client
/// certificate, which Redis asks for by default (`tls-auth-clients yes`).
#[derive(Default)]
pub struct Tls {
    pub ca_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub server_name: Option<String>,
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn tls_config(tls: &Tls) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots);
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("cannot read {}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("bad certificate in {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("TLS client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Arc::new(config))
}

/// Where to connect.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// A URL as it may be shown: the password replaced by `***` (error messages end up in logs).
pub fn shown(url: &str) -> String {
    let Some(rest) = url.strip_prefix("redis://") else {
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        };
    };
    match rest.rsplit_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("redis://{user}:***@{host}"),
            None => format!("redis://{auth}@{host}"),
        },
        None => url.to_owned(),
    }
}

/// The largest `--password-file` read (a Redis password is at most a few hundred bytes).
const MAX_PASSWORD_FILE: u64 = 4096;

/// Where to connect, from a URL (`redis://…`, or `HOST:PORT`), `--user` and
/// `--password-file`.
pub fn target(
    url: &str,
    user: Option<&str>,
    password_file: Option<&std::path::Path>,
) -> Result<Target, String> {
    let mut target = if url.starts_with("redis://") {
        parse_url(url)?
    } else {
        parse_url(&format!("redis://{url}"))?
    };
    if let Some(u) = user {
        target.user = Some(u.to_owned());
    }
    if target.user.is_some() && target.password.is_none() && password_file.is_none() {
        return Err("--user needs --password-file (or a password in the URL)".into());
    }
    if let Some(path) = password_file {
        let (bytes, _) = redis_enc_core::provider::read::small_file(path, MAX_PASSWORD_FILE)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| format!("cannot read {}: not UTF-8", path.display()))?;
        target.password = Some(text.trim().to_owned());
    }
    Ok(target)
}

/// Parses `redis://[user[:password]@]host[:port][/]`.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| format!("'{}' is not a redis:// URL", shown(url)))?;
    let rest = rest.trim_end_matches('/');
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port in '{}'", shown(url)))?,
        ),
        None => (hostport, 6379),
    };
    if host.is_empty() {
        return Err(format!("no host in '{}'", shown(url)));
    }
    let (user, password) = match auth {
        None => (None, None),
        Some(a) => match a.split_once(':') {
            Some((u, p)) => ((!u.is_empty()).then(|| u.to_owned()), Some(p.to_owned())),
            None => (Some(a.to_owned()), None),
        },
    };
    Ok(Target {
        host: host.to_owned(),
        port,
        user,
        password,
    })
}

fn command(stream: &mut impl Write, args: &[&str]) -> std::io::Result<()> {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(out.as_bytes())
}

/// A connection to a server, authenticated when the target has a password.
pub struct Connection(BufReader<Box<dyn Stream>>);

/// Connects to `target` (over TLS when given) and authenticates; `timeout` bounds each read.
pub fn connect(
    target: &Target,
    tls: Option<&Tls>,
    timeout: Duration,
) -> Result<Connection, String> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .map_err(|e| format!("cannot connect to {}:{}: {e}", target.host, target.port))?;
    tcp.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let stream: Box<dyn Stream> = match tls {
        None => Box::new(tcp),
        Some(tls) => {
            let name = tls
                .server_name
                .clone()
                .unwrap_or_else(|| target.host.clone());
            let name = ServerName::try_from(name).map_err(|e| format!("TLS server name: {e}"))?;
            let connection = rustls::ClientConnection::new(tls_config(tls)?, name)
                .map_err(|e| format!("TLS: {e}"))?;
            Box::new(rustls::StreamOwned::new(connection, tcp))
        }
    };
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    if let Some(password) = &target.password {
        match &target.user {
            Some(user) => command(reader.get_mut(), &["AUTH", user, password]),
            None => command(reader.get_mut(), &["AUTH", password]),
        }
        .map_err(|e| e.to_string())?;
        let reply = reply_line(&mut reader)?;
        if !reply.starts_with("+OK") {
            // Some servers quote what they were sent; the password never reaches a log.
            let mut said = reply.trim_start_matches('-').to_owned();
            if !password.is_empty() {
                said = said.replace(password.as_str(), "***");
            }
            return Err(format!("authentication failed: {said}"));
        }
    }
    Ok(Connection(reader))
}

/// The longest bulk reply [`Connection::bulk`] reads.
const MAX_BULK: usize = 16 << 20;

impl Connection {
    /// Sends a command whose reply is a bulk string (`CLUSTER NODES`, `INFO`) and reads it.
    pub fn bulk(&mut self, args: &[&str]) -> Result<Vec<u8>, String> {
        match self.call(args)? {
            Reply::Bulk(body) => Ok(body),
            other => Err(format!("{}: not a bulk reply ({other:?})", args.join(" "))),
        }
    }
}

/// A reply, as RESP2 gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Bulk(Vec<u8>),
    Status(String),
    Int(i64),
    Array(Vec<Reply>),
    Nil,
}

impl Reply {
    /// The text of a bulk or status reply (lossy), else empty.
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Reply::Status(s) => s.clone(),
            Reply::Int(n) => n.to_string(),
            _ => String::new(),
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            Reply::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(items) => items,
            _ => &[],
        }
    }

    /// The value after `name` in a flat `name value ...` array (how RESP2 shows a map).
    pub fn field(&self, name: &str) -> Option<&Reply> {
        self.items()
            .chunks(2)
            .find(|pair| pair[0].text() == name)
            .and_then(|pair| pair.get(1))
    }
}

/// The deepest nesting and the most elements [`Connection::call`] reads in one reply.
const MAX_DEPTH: usize = 8;
const MAX_ELEMENTS: usize = 1 << 20;

impl Connection {
    /// Sends a command and reads its reply, whatever its shape; an error reply is `Err`.
    pub fn call(&mut self, args: &[&str]) -> Result<Reply, String> {
        command(self.0.get_mut(), args).map_err(|e| e.to_string())?;
        self.read_reply(0)?
            .map_err(|err| format!("{} refused: {err}", args.join(" ")))
    }

    /// One reply: `Ok(Err(text))` for an error reply (nested ones included).
    fn read_reply(&mut self, depth: usize) -> Result<Result<Reply, String>, String> {
        let line = reply_line(&mut self.0)?;
        let (kind, rest) = line.split_at_checked(1).unwrap_or(("", ""));
        let count = || {
            rest.parse::<i64>()
                .map_err(|_| format!("not a Redis reply ({line})"))
        };
        // A length or count: `None` for -1 (nil), `Err` for anything over `max`.
        let size = |max: usize| -> Result<Option<usize>, String> {
            match count()? {
                -1 => Ok(None),
                n => usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= max)
                    .map(Some)
                    .ok_or_else(|| format!("a reply too large ({line})")),
            }
        };
        Ok(Ok(match kind {
            "+" => Reply::Status(rest.to_owned()),
            "-" => return Ok(Err(rest.to_owned())),
            ":" => Reply::Int(count()?),
            "$" => match size(MAX_BULK)? {
                None => Reply::Nil,
                Some(n) => {
                    let mut body = vec![0u8; n + 2];
                    self.0
                        .read_exact(&mut body)
                        .map_err(|e| format!("reading from the server: {e}"))?;
                    body.truncate(n);
                    Reply::Bulk(body)
                }
            },
            "*" if depth >= MAX_DEPTH => return Err(format!("a reply nested too deep ({line})")),
            "*" => match size(MAX_ELEMENTS)? {
                None => Reply::Nil,
                Some(n) => {
                    let mut items = Vec::with_capacity(n.min(1024));
                    let mut error = None;
                    for _ in 0..n {
                        match self.read_reply(depth + 1)? {
                            Ok(item) => items.push(item),
                            Err(e) => error = error.or(Some(e)),
                        }
                    }
                    if let Some(e) = error {
                        return Ok(Err(e));
                    }
                    Reply::Array(items)
                }
            },
            _ => return Err(format!("not a Redis reply ({line})")),
        }))
    }
}

impl Connection {
    /// Sends a command whose reply is a status (`OK`) and reads it.
    pub fn status(&mut self, args: &[&str]) -> Result<String, String> {
        command(self.0.get_mut(), args).map_err(|e| e.to_string())?;
        let line = reply_line(&mut self.0)?;
        match line.split_at_checked(1) {
            Some(("+", status)) => Ok(status.to_owned()),
            Some(("-", err)) => Err(err.to_owned()),
            _ => Err(format!("{}: not a status reply ({line})", args.join(" "))),
        }
    }
}

/// Streams a snapshot into `out`; `progress` gets the bytes received so far.
pub fn snapshot(
    target: &Target,
    tls: Option<&Tls>,
    out: &mut impl Write,
    progress: impl FnMut(u64),
) -> Result<u64, String> {
    let Connection(mut reader) = connect(target, tls, Duration::from_secs(120))?;
    // Ask for a diskless transfer and only the RDB (Redis 7.0+); older servers may refuse either.
    for args in [
        &["REPLCONF", "capa", "eof"][..],
        &["REPLCONF", "rdb-only", "1"],
    ] {
        command(reader.get_mut(), args).map_err(|e| e.to_string())?;
        let _ = reply_line(&mut reader)?;
    }
    command(reader.get_mut(), &["SYNC"]).map_err(|e| e.to_string())?;
    read_sync_reply(&mut reader, out, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("redis://ops:s3cret@10.1.2.3:6380/").unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_deref(),
                t.password.as_deref()
            ),
            ("10.1.2.3", 6380, Some("ops"), Some("s3cret"))
        );
        let Err(err) = parse_url("redis://ops:s3cret@10.1.2.3:bad") else {
            panic!("a bad port parses")
        };
        assert!(!err.contains("s3cret"), "{err}");
        assert_eq!(shown("redis://ops:s3cret@h:1"), "redis://ops:***@h:1");
        let t = parse_url("redis://localhost").unwrap();
        assert_eq!((t.port, t.user, t.password), (6379, None, None));
        assert!(parse_url("http://x").is_err());
    }
}
