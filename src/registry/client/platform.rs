//! The platform check of [`RegistryClient`]: what a tag's index offers for one platform,
//! read by digest (the index, and with a config wanted, the platform's manifest), each body
//! checked against the digest it was asked by. Nothing is pulled.

use super::{
    CheckError, Digest, HostSession, PlatformDigest, Problem, RegistryClient, RegistryMethod,
    RepoTag, api_host,
};

impl RegistryClient {
    /// What the index `index` of `item`'s repository offers for `platform` (`os/arch[/variant]`):
    /// one `GET` of the index by digest, and with `want_config` one more of the platform's
    /// manifest to read its config digest. Each body is checked against the digest it was asked
    /// by. When `index` is a single-platform manifest, that manifest is the answer. Nothing is
    /// pulled; the layers are never fetched.
    pub fn platform_digest(
        &self,
        item: &RepoTag,
        index: &Digest,
        platform: &str,
        want_config: bool,
    ) -> Result<PlatformDigest, CheckError> {
        let canonical = RepoTag {
            host: api_host(&item.host),
            ..item.clone()
        };
        let state = self.host_state(&canonical.host);
        let found = self
            .open_session(&state, &[&canonical], false)
            .and_then(|(session, _)| {
                self.find_platform(&session, &canonical, index, platform, want_config)
            });
        found.map_err(|problem| self.to_error(&problem, &canonical).for_item(item))
    }

    pub(super) fn find_platform(
        &self,
        session: &HostSession<'_>,
        tag: &RepoTag,
        index: &Digest,
        platform: &str,
        want_config: bool,
    ) -> Result<PlatformDigest, Problem> {
        let body = self.get_by_digest(session, tag, index)?;
        let doc: ManifestDoc = serde_json::from_slice(&body).map_err(|e| {
            Problem::Bad(format!(
                "the manifest {} is not valid JSON ({e})",
                index.short()
            ))
        })?;
        let Some(entries) = doc.manifests else {
            let config = doc.config.map(|c| c.digest);
            return Ok(PlatformDigest {
                manifest: index.clone(),
                config: if want_config { config } else { None },
            });
        };
        let manifest = select_platform(&entries, platform).map_err(Problem::Bad)?;
        let config = if want_config {
            let body = self.get_by_digest(session, tag, &manifest)?;
            let doc: ManifestDoc = serde_json::from_slice(&body).map_err(|e| {
                Problem::Bad(format!(
                    "the manifest {} is not valid JSON ({e})",
                    manifest.short()
                ))
            })?;
            Some(doc.config.map(|c| c.digest).ok_or_else(|| {
                Problem::Bad(format!(
                    "the {platform} manifest {} names no config",
                    manifest.short()
                ))
            })?)
        } else {
            None
        };
        Ok(PlatformDigest { manifest, config })
    }

    /// The body of the manifest `digest`, checked against it.
    pub(super) fn get_by_digest(
        &self,
        session: &HostSession<'_>,
        tag: &RepoTag,
        digest: &Digest,
    ) -> Result<Vec<u8>, Problem> {
        let (_, _, resp) =
            self.manifest_request(session, tag, digest.as_str(), RegistryMethod::Get)?;
        let hex = crate::registry::sha256_hex(&resp.body);
        if digest.as_str() != format!("sha256:{hex}") {
            return Err(Problem::Bad(format!(
                "the manifest it sent for {digest} has a different digest (sha256:{hex})"
            )));
        }
        Ok(resp.body)
    }
}

/// The fields of a manifest or index that the platform check reads.
#[derive(serde::Deserialize)]
struct ManifestDoc {
    manifests: Option<Vec<IndexEntry>>,
    config: Option<Descriptor>,
}

#[derive(serde::Deserialize)]
struct Descriptor {
    digest: Digest,
}

#[derive(serde::Deserialize)]
pub(crate) struct IndexEntry {
    digest: Digest,
    platform: Option<EntryPlatform>,
}

#[derive(serde::Deserialize)]
struct EntryPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// The digest of the one index entry for `platform` (`os/arch[/variant]`). A missing variant
/// matches an entry without one, and arm64's `v8` is its default; entries without a platform
/// (attestations) never match.
pub(crate) fn select_platform(entries: &[IndexEntry], platform: &str) -> Result<Digest, String> {
    let mut parts = platform.split('/');
    let (os, arch) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let want_variant = normal_variant(arch, parts.next());
    let matching: Vec<&IndexEntry> = entries
        .iter()
        .filter(|e| {
            e.platform.as_ref().is_some_and(|p| {
                p.os == os
                    && p.architecture == arch
                    && normal_variant(arch, p.variant.as_deref()) == want_variant
            })
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.digest.clone()),
        [] => Err(format!("its index has no image for {platform}")),
        [first, ..] => {
            // Several identical entries are one answer; different ones are ambiguous.
            if matching.iter().all(|e| e.digest == first.digest) {
                Ok(first.digest.clone())
            } else {
                Err(format!(
                    "its index has {} different images for {platform}",
                    matching.len()
                ))
            }
        }
    }
}

fn normal_variant<'a>(arch: &str, variant: Option<&'a str>) -> Option<&'a str> {
    match variant.filter(|v| !v.is_empty()) {
        Some("v8") if arch == "arm64" => None,
        other => other,
    }
}

/// The part of an image config that holds its labels.
#[derive(serde::Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<ImageConfigInner>,
}

#[derive(serde::Deserialize)]
struct ImageConfigInner {
    #[serde(default, rename = "Labels")]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

impl RegistryClient {
    /// The labels of the image `digest` (an index or a manifest) of `item`'s repository for
    /// `platform`: the platform's manifest, then its config blob, each checked against its
    /// digest. Candidates only: three small `GET`s, never a layer.
    pub fn config_labels(
        &self,
        item: &RepoTag,
        digest: &Digest,
        platform: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, CheckError> {
        let canonical = RepoTag {
            host: api_host(&item.host),
            ..item.clone()
        };
        let state = self.host_state(&canonical.host);
        let found = self
            .open_session(&state, &[&canonical], false)
            .and_then(|(session, _)| {
                let found = self.find_platform(&session, &canonical, digest, platform, true)?;
                let config = found.config.ok_or_else(|| {
                    Problem::Bad(format!(
                        "the manifest {} names no config",
                        found.manifest.short()
                    ))
                })?;
                let url = format!("{}/v2/{}/blobs/{config}", state.base, canonical.repository);
                let (_, resp) = self.authorized(
                    &session,
                    &canonical,
                    &url,
                    None,
                    RegistryMethod::Get,
                    "config blob",
                )?;
                let hex = crate::registry::sha256_hex(&resp.body);
                if config.as_str() != format!("sha256:{hex}") {
                    return Err(Problem::Bad(format!(
                        "the config it sent for {config} has a different digest (sha256:{hex})"
                    )));
                }
                let doc: ImageConfig = serde_json::from_slice(&resp.body).map_err(|e| {
                    Problem::Bad(format!(
                        "the config {} is not valid JSON ({e})",
                        config.short()
                    ))
                })?;
                Ok(doc.config.and_then(|c| c.labels).unwrap_or_default())
            });
        found.map_err(|problem| self.to_error(&problem, &canonical).for_item(item))
    }
}
