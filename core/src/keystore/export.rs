//! The export document (docs/FORMAT.md §2.1): the whole store with its keys wrapped, as the RDB
//! record, the replication stream and `ENC.KEYRING EXPORT` carry it, and its validation.

use super::*;

impl KeyStore {
    /// The whole store, keys wrapped, as one blob (§2.1): for the RDB, replication, and
    /// `ENC.KEYRING EXPORT`. The buffer, which holds the wrapped keys, is wiped when dropped.
    pub fn export(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let doc = ExportDoc {
            keyrings: self
                .rings
                .iter()
                .map(|r| ExportRing {
                    id: r.id.0,
                    name: r.name.as_str().to_owned(),
                    primary: r.primary.0,
                    destroyed: r.destroyed,
                    versions: r
                        .versions
                        .iter()
                        .map(|(v, s)| ExportVersion {
                            version: *v,
                            state: s.state,
                            created: s.created,
                            material: s.material.clone(),
                        })
                        .collect(),
                })
                .collect(),
        };
        let mut out = zeroize::Zeroizing::new(EXPORT_MAGIC.to_vec());
        // Serializing plain data to JSON cannot fail.
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&doc).unwrap_or_default());
        out.extend_from_slice(&json);
        out
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportDoc {
    pub(super) keyrings: Vec<ExportRing>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportRing {
    pub(super) id: u16,
    pub(super) name: String,
    pub(super) primary: u16,
    pub(super) destroyed: bool,
    pub(super) versions: Vec<ExportVersion>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportVersion {
    pub(super) version: u16,
    pub(super) state: VersionState,
    pub(super) created: u64,
    pub(super) material: Material,
}

impl ExportDoc {
    pub(super) fn validate(&self) -> Result<(), Error> {
        // Each keyring id and name once, each version of a keyring once.
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for r in &self.keyrings {
            let mut versions = std::collections::HashSet::new();
            if !ids.insert(r.id)
                || !names.insert(r.name.as_str())
                || !r.versions.iter().all(|v| versions.insert(v.version))
            {
                return Err(Error::InvalidExport);
            }
        }
        for r in &self.keyrings {
            let has_primary = r.versions.iter().any(|v| v.version == r.primary);
            let derived_ok = r.versions.iter().all(|v| {
                !matches!(v.material, Material::Derived { .. }) || (r.id == 0 && v.version == 1)
            });
            let destroyed_ok = r
                .versions
                .iter()
                .all(|v| (v.state == VersionState::Destroyed) == (v.material == Material::None));
            let primary_active = r
                .versions
                .iter()
                .any(|v| v.version == r.primary && v.state == VersionState::Active);
            // A live keyring seals with its primary; `default` always exists.
            let live = r.destroyed || primary_active;
            let default_kept = r.id != 0 || (!r.destroyed && r.name == "default");
            if r.versions.is_empty()
                || !has_primary
                || !derived_ok
                || !destroyed_ok
                || !live
                || !default_kept
                || r.versions.iter().any(|v| v.version == 0)
            {
                return Err(Error::InvalidExport);
            }
        }
        Ok(())
    }
}
