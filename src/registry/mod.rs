//! placeholder stub (to be replaced by the registry client)
#![allow(missing_docs, unreachable_pub, clippy::unused_self)]
use crate::reference::Digest;
use std::collections::BTreeMap;
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoTag {
    pub host: String,
    pub repository: String,
    pub tag: String,
}
#[derive(Default)]
pub struct RegistryOptions {
    pub docker_config_dir: Option<std::path::PathBuf>,
    pub insecure_hosts: Vec<String>,
}
pub struct RegistryClient;
pub struct RateLimit;
impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("x")
    }
}
pub struct RemoteDigest {
    pub digest: Digest,
    pub rate_limit: Option<RateLimit>,
}
#[derive(Debug)]
pub struct CheckError;
impl CheckError {
    pub fn kind(&self) -> &'static str {
        "x"
    }
}
impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("x")
    }
}
impl RegistryClient {
    pub fn new(_o: RegistryOptions) -> anyhow::Result<Self> {
        Ok(RegistryClient)
    }
    pub fn check_all(&self, _i: &[RepoTag]) -> BTreeMap<RepoTag, Result<RemoteDigest, CheckError>> {
        BTreeMap::new()
    }
}
