//! The keys that make evidence tamper-evident (docs/FORMAT.md §9): the MAC of a compliance
//! report and of each backup and restore-drill record. Both are HMAC-SHA256 under keys derived
//! from the master key, so only a holder of the master key can make or check them.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::key::MasterKey;

type HmacSha256 = Hmac<Sha256>;

/// A key that authenticates one kind of evidence.
pub struct EvidenceKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for EvidenceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EvidenceKey(..)")
    }
}

impl EvidenceKey {
    /// The key of reports' MACs (§9.1).
    pub fn for_reports(master: &MasterKey) -> EvidenceKey {
        EvidenceKey(master.derive_secret(b"redis-enc report"))
    }

    /// The key of backup and restore-drill records' MACs (§9.2).
    pub fn for_records(master: &MasterKey) -> EvidenceKey {
        EvidenceKey(master.derive_secret(b"redis-enc evidence records"))
    }

    fn hmac(&self, bytes: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(self.0.as_ref()).expect("any key length");
        mac.update(bytes);
        mac
    }

    /// The MAC of `bytes`, as 64 lower-case hex digits.
    pub fn mac(&self, bytes: &[u8]) -> String {
        hex::encode(self.hmac(bytes).finalize().into_bytes())
    }

    /// Whether `mac` is the MAC of `bytes`, written as [`EvidenceKey::mac`] writes it (64
    /// lower-case hex digits: any other spelling is an edit); compared in constant time.
    pub fn verify(&self, bytes: &[u8], mac: &str) -> bool {
        let spelled =
            mac.len() == 64 && mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        spelled && hex::decode(mac).is_ok_and(|tag| self.hmac(bytes).verify_slice(&tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_verifies_only_its_bytes_under_its_own_key() {
        let master = MasterKey::generate();
        let reports = EvidenceKey::for_reports(&master);
        let records = EvidenceKey::for_records(&master);
        let mac = reports.mac(b"report");
        assert_eq!(mac.len(), 64);
        assert!(reports.verify(b"report", &mac));
        assert!(!reports.verify(b"Report", &mac));
        assert!(!records.verify(b"report", &mac), "the two keys differ");
        assert!(!reports.verify(b"report", &mac[..62]), "a cut MAC fails");
        assert!(!reports.verify(b"report", "not hex"));
        assert!(
            !reports.verify(b"report", &mac.to_uppercase()),
            "one spelling only"
        );
        let other = EvidenceKey::for_reports(&MasterKey::generate());
        assert!(!other.verify(b"report", &mac));
    }

    /// The worked values of docs/FORMAT.md §9.4.
    #[test]
    fn the_documented_vectors() {
        let master =
            MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "test").unwrap();
        assert_eq!(
            EvidenceKey::for_reports(&master).mac(br#"{"format":"redis-enc-report/1"}"#),
            "b1f6c4c513977fbfbd0b40bd173fd58ffba8a3f7b96bc1599469961a15090962"
        );
        assert_eq!(
            EvidenceKey::for_records(&master).mac(RECORD.as_bytes()),
            "7a26bc1526fc218900dde95b94c0beeb47e28edc5ef4dd2fc4feb0a0a1d98b95"
        );
    }

    const RECORD: &str = r#"{"detail":{"differing":0,"recovery_s":0.42},"format":1,"kind":"restore-drill","master_key_id":"2a984a545c1cdbce","prev":"d79067ed6657e292ee9154ee2f34f53eb07908b73b217ee70747b45cfc07ba26","result":"ok","seconds":1.25,"seq":0,"time":1796256000}"#;
}
