//! Takes a consistent snapshot of a live server over the replication protocol, as
//! `redis-cli --rdb` does: `SYNC`, then the RDB the primary streams, written straight into the
//! encrypting writer (never to a plaintext file).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// The longest reply line read (a status, an error, a bulk length).
const MAX_LINE: u64 = 64 * 1024;

/// One reply line, bounded: a server that sends no end of line does not fill the memory.
fn line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut buf = Vec::new();
    reader
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .map_err(|e| format!("reading from the server: {e}"))?;
    if buf.is_empty() {
        return Err("the server closed the connection".into());
    }
    if buf.last() != Some(&b'\n') {
        return Err(format!(
            "the server sent a reply line longer than {MAX_LINE} bytes: not a Redis reply"
        ));
    }
    Ok(String::from_utf8_lossy(&buf)
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect())
}

/// Streams a snapshot into `out`; `progress` gets the bytes received so far.
pub fn snapshot(
    target: &Target,
    tls: Option<&Tls>,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<u64, String> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .map_err(|e| format!("cannot connect to {}:{}: {e}", target.host, target.port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
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
        let reply = line(&mut reader)?;
        if !reply.starts_with("+OK") {
            return Err(format!(
                "authentication failed: {}",
                reply.trim_start_matches('-')
            ));
        }
    }
    // Ask for a diskless transfer and only the RDB (Redis 7.0+); older servers may refuse either.
    for args in [
        &["REPLCONF", "capa", "eof"][..],
        &["REPLCONF", "rdb-only", "1"],
    ] {
        command(reader.get_mut(), args).map_err(|e| e.to_string())?;
        let _ = line(&mut reader)?;
    }
    command(reader.get_mut(), &["SYNC"]).map_err(|e| e.to_string())?;
    let header = loop {
        let l = line(&mut reader)?;
        if !l.is_empty() {
            break l;
        }
    };
    if let Some(err) = header.strip_prefix('-') {
        return Err(format!("the server refused SYNC: {err}"));
    }
    let spec = header
        .strip_prefix('$')
        .ok_or_else(|| format!("unexpected reply to SYNC: {header}"))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    if let Some(mark) = spec.strip_prefix("EOF:") {
        // Diskless: the RDB ends with the 40-byte mark; hold back 40 bytes until it shows.
        let mark = mark.as_bytes().to_vec();
        let mut held: Vec<u8> = Vec::new();
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("reading the snapshot: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection before the snapshot ended".into());
            }
            held.extend_from_slice(&buf[..n]);
            if held.len() >= mark.len() && held[held.len() - mark.len()..] == mark[..] {
                let body = held.len() - mark.len();
                out.write_all(&held[..body]).map_err(|e| e.to_string())?;
                total += body as u64;
                progress(total);
                return Ok(total);
            }
            if held.len() > mark.len() {
                let release = held.len() - mark.len();
                out.write_all(&held[..release]).map_err(|e| e.to_string())?;
                total += release as u64;
                held.drain(..release);
                progress(total);
            }
        }
    }
    let len: u64 = spec
        .parse()
        .map_err(|_| format!("unexpected reply to SYNC: {header}"))?;
    while total < len {
        let want = ((len - total) as usize).min(buf.len());
        let n = reader
            .read(&mut buf[..want])
            .map_err(|e| format!("reading the snapshot: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection before the snapshot ended".into());
        }
        out.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        total += n as u64;
        progress(total);
    }
    Ok(total)
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
