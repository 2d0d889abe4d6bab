//! The report as one self-contained HTML page: summary first, then a table per paragraph of
//! 164.312, then the evidence of each check; inline styles with a print stylesheet, no script
//! and no external asset. The report document itself is embedded, and a signed page carries a
//! MAC of its own bytes in its head (docs/FORMAT.md §9.2), so that `report verify` checks the
//! page as it is, whichever release rendered it.

use std::fmt::Write as _;

use serde_json::Value;

const DOCUMENT_OPEN: &str = "<script type=\"application/json\" id=\"redis-enc-report\">";
const DOCUMENT_CLOSE: &str = "</script>";
/// The page's MAC, in its head; while it is computed, the value is 64 zeros.
const PAGE_MAC_OPEN: &str = "<meta name=\"redis-enc-page-mac\" content=\"";
pub const UNSIGNED_PAGE_MAC: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The page's MAC and the page with it zeroed, if the page has one.
pub fn page_mac(page: &str) -> Option<(String, String)> {
    let start = page.find(PAGE_MAC_OPEN)? + PAGE_MAC_OPEN.len();
    let mac = page.get(start..start + 64)?.to_owned();
    let zeroed = format!(
        "{}{UNSIGNED_PAGE_MAC}{}",
        &page[..start],
        &page[start + 64..]
    );
    Some((mac, zeroed))
}

/// Puts `mac` in the place [`render`] left for it.
pub fn with_page_mac(page: &str, mac: &str) -> String {
    page.replacen(
        &format!("{PAGE_MAC_OPEN}{UNSIGNED_PAGE_MAC}"),
        &format!("{PAGE_MAC_OPEN}{mac}"),
        1,
    )
}

const STYLE: &str = "
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1b1f24; margin: 2rem auto; max-width: 64rem; padding: 0 1.5rem; }
h1 { font-size: 1.7rem; margin: 0 0 .2rem; } h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.meta { color: #57606a; margin: 0; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: .8rem 1.2rem; min-width: 9rem; }
.card .big { font-size: 2.2rem; font-weight: 700; display: block; }
.verdict-pass { border-color: #1a7f37; background: #dafbe1; } .verdict-fail { border-color: #cf222e; background: #ffebe9; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .6rem; border-bottom: 1px solid #d8dee4; }
th { background: #f6f8fa; }
table.checks { table-layout: fixed; } table.checks th:first-child { width: 34%; } table.checks th:nth-child(2) { width: 7rem; }
.status { font-weight: 700; text-transform: uppercase; font-size: .8rem; padding: .1rem .45rem; border-radius: 4px; white-space: nowrap; }
.pass { background: #dafbe1; color: #116329; } .fail { background: #ffebe9; color: #a40e26; }
.warn { background: #fff8c5; color: #7d4e00; } .not-applicable { background: #eaeef2; color: #424a53; }
pre { background: #f6f8fa; padding: .7rem; border-radius: 6px; overflow-x: auto; font-size: .8rem; white-space: pre-wrap; word-break: break-all; }
code { font-size: .85em; }
footer { margin-top: 2.5rem; color: #57606a; font-size: .85rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  h2 { break-after: avoid; } .check, table { break-inside: avoid; }
  .card { border-width: 2px; }
  a { color: inherit; text-decoration: none; }
}
";

/// HTML-escapes text.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

fn status(s: &Value) -> String {
    let s = esc(s.as_str().unwrap_or(""));
    format!("<span class=\"status {s}\">{s}</span>")
}

/// The document as embedded: JSON with `<`, `>` and `&` escaped, so that no text in it can end
/// the script element.
fn embed(doc: &Value) -> String {
    doc.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The embedded document of a page, if it has one.
pub fn embedded(page: &str) -> Option<String> {
    let start = page.find(DOCUMENT_OPEN)? + DOCUMENT_OPEN.len();
    let len = page[start..].find(DOCUMENT_CLOSE)?;
    Some(page[start..start + len].to_owned())
}

/// Renders the page; a signed report's page has a zeroed page MAC, for [`with_page_mac`].
pub fn render(doc: &Value) -> String {
    let mut h = String::new();
    let summary = &doc["summary"];
    let target = text(&doc["target"]["url"]);
    let made = text(&doc["made_at"]);
    let mac_tag = if doc["mac"].is_null() {
        String::new()
    } else {
        format!("{PAGE_MAC_OPEN}{UNSIGNED_PAGE_MAC}\">\n")
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{mac_tag}<title>Encryption evidence: {} at {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&target),
        esc(&made)
    );
    let servers = doc["servers"].as_array().cloned().unwrap_or_default();
    let _ = write!(
        h,
        "<header>\n<h1>Encryption evidence report</h1>\n<p class=\"meta\">{} ({} server{}{}), made {} by redis-enc {}; module version {}</p>\n</header>\n",
        esc(&target),
        servers.len(),
        if servers.len() == 1 { "" } else { "s" },
        if doc["target"]["cluster"] == true { ", Redis Cluster" } else { "" },
        esc(&made),
        esc(&text(&doc["tool_version"])),
        esc(&text(&doc["module_version"])),
    );
    let failed = summary["failed"].as_u64().unwrap_or(0);
    let verdict = if failed == 0 { "pass" } else { "fail" };
    let _ = write!(
        h,
        "<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n\
         <div class=\"card verdict-{verdict}\"><span class=\"big\">{} of {}</span>controls pass</div>\n\
         <div class=\"card\"><span class=\"big\">{}</span>controls fail</div>\n\
         <div class=\"card\"><span class=\"big\">{:.1}%</span>of PHI values sealed ({} of {})</div>\n\
         <div class=\"card\"><span class=\"big\">{}</span>warnings</div>\n</div>\n",
        summary["passed"],
        summary["checks"],
        failed,
        summary["coverage_percent"].as_f64().unwrap_or(0.0),
        summary["phi_values_sealed"],
        summary["phi_values"],
        summary["warnings"],
    );
    h.push_str(
        "<table class=\"checks\">\n<tr><th>Check</th><th>Status</th><th>Finding</th></tr>\n",
    );
    for c in doc["checks"].as_array().into_iter().flatten() {
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#check-{id}\">{title}</a><br><code>{id}</code></td><td>{}</td><td>{}</td></tr>",
            status(&c["status"]),
            esc(&text(&c["summary"])),
            id = esc(&text(&c["id"])),
            title = esc(&text(&c["title"])),
        );
    }
    h.push_str("</table>\n</section>\n");
    h.push_str("<section id=\"hipaa\">\n<h2>HIPAA Security Rule, technical safeguards (45 CFR 164.312)</h2>\n");
    let by_id = |id: &str| {
        doc["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["id"] == id)
            .cloned()
    };
    for p in doc["hipaa"].as_array().into_iter().flatten() {
        let _ = writeln!(
            h,
            "<h3>{} {}</h3>",
            esc(&text(&p["paragraph"])),
            esc(&text(&p["title"]))
        );
        let ids = p["checks"].as_array().cloned().unwrap_or_default();
        if ids.is_empty() {
            h.push_str("<p>Not measured by this report: a safeguard of the applications and people that use Redis, not of Redis.</p>\n");
            continue;
        }
        h.push_str(
            "<table class=\"checks\">\n<tr><th>Check</th><th>Status</th><th>Finding</th></tr>\n",
        );
        for id in ids {
            if let Some(c) = by_id(id.as_str().unwrap_or("")) {
                let _ = writeln!(
                    h,
                    "<tr><td><a href=\"#check-{id}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                    esc(&text(&c["title"])),
                    status(&c["status"]),
                    esc(&text(&c["summary"])),
                    id = esc(&text(&c["id"])),
                );
            }
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n<section id=\"evidence\">\n<h2>Evidence</h2>\n");
    for c in doc["checks"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<div class=\"check\" id=\"check-{id}\">\n<h3>{} <code>{id}</code> {}</h3>\n<p>{}</p>\n<p class=\"meta\">Supports {}</p>\n",
            esc(&text(&c["title"])),
            status(&c["status"]),
            esc(&text(&c["summary"])),
            esc(&c["hipaa"].as_array().into_iter().flatten().map(text).collect::<Vec<_>>().join(", ")),
            id = esc(&text(&c["id"])),
        );
        h.push_str("<table>\n");
        for (name, value) in c["figures"].as_object().into_iter().flatten() {
            let shown = match value {
                Value::Array(_) | Value::Object(_) => format!(
                    "<pre>{}</pre>",
                    esc(&serde_json::to_string_pretty(value).unwrap_or_default())
                ),
                v => esc(&text(v)),
            };
            let _ = writeln!(h, "<tr><th>{}</th><td>{shown}</td></tr>", esc(name));
        }
        let _ = write!(
            h,
            "</table>\n<pre>{}</pre>\n</div>\n",
            esc(&serde_json::to_string_pretty(&c["evidence"]).unwrap_or_default())
        );
    }
    h.push_str("</section>\n<section id=\"servers\">\n<h2>Servers read</h2>\n<table>\n<tr><th>Address</th><th>Role</th><th>Server</th><th>Run id</th><th>Master key id</th></tr>\n");
    for s in &servers {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} {}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&text(&s["address"])),
            esc(&text(&s["role"])),
            esc(&text(&s["server"])),
            esc(&text(&s["version"])),
            esc(&text(&s["run_id"])),
            esc(&text(&s["master_key_id"])),
        );
    }
    h.push_str("</table>\n</section>\n<footer>\n");
    let _ = writeln!(
        h,
        "<p>Settings read, SHA-256: <code>{}</code></p>",
        esc(&text(&doc["settings_sha256"]))
    );
    match doc["mac"]["value"].as_str() {
        Some(mac) => {
            let _ = writeln!(
                h,
                "<p>Signed: HMAC-SHA256 <code>{}</code> under master key <code>{}</code>. Check this page or its JSON with <code>redis-enc report verify FILE --master-key URI</code>.</p>",
                esc(mac),
                esc(&text(&doc["mac"]["master_key_id"]))
            );
        }
        None => h.push_str("<p>Not signed: made without a master key.</p>\n"),
    }
    let _ = write!(
        h,
        "</footer>\n{DOCUMENT_OPEN}{}{DOCUMENT_CLOSE}\n</body>\n</html>\n",
        embed(doc)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_document_survives_the_page() {
        let doc = json!({
            "format": "redis-enc-report/1",
            "target": { "url": "redis://h:1" },
            "checks": [{ "id": "x", "title": "</script><b>&", "status": "pass", "summary": "<i>", "hipaa": [], "figures": {}, "evidence": {} }],
        });
        let page = render(&doc);
        assert!(!page.contains("<b>"), "text is escaped");
        let back: Value = serde_json::from_str(&embedded(&page).unwrap()).unwrap();
        assert_eq!(back, doc);
        assert_eq!(render(&back), page);
        assert!(page_mac(&page).is_none(), "an unsigned page has no MAC");
        let signed = render(&json!({ "mac": { "value": "x" } }));
        let (mac, zeroed) = page_mac(&signed).unwrap();
        assert_eq!(
            (mac.as_str(), zeroed.as_str()),
            (UNSIGNED_PAGE_MAC, signed.as_str())
        );
        let with = with_page_mac(&signed, &"a".repeat(64));
        assert_eq!(page_mac(&with).unwrap(), ("a".repeat(64), signed));
    }
}
