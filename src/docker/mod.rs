//! placeholder stub (to be replaced by the facade)
#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unused_self,
    clippy::missing_const_for_fn
)]
use std::collections::BTreeMap;
#[derive(Debug)]
pub struct DockerError;
impl DockerError {
    pub fn is_unreachable(&self) -> bool {
        true
    }
}
impl std::fmt::Display for DockerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stub")
    }
}
impl std::error::Error for DockerError {}
pub struct Docker;
pub struct EngineInfo {
    pub containerd_image_store: bool,
}
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}
pub struct ContainerFacts {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub config_image: String,
    pub labels: BTreeMap<String, String>,
    pub running: bool,
}
pub struct ImageFacts {
    pub repo_digests: Vec<String>,
}
impl Docker {
    pub fn connect(_h: Option<&str>) -> Result<Docker, DockerError> {
        Err(DockerError)
    }
    pub fn engine_info(&self) -> Result<EngineInfo, DockerError> {
        Err(DockerError)
    }
    pub fn list_containers(&self, _p: Option<&str>) -> Result<Vec<ContainerSummary>, DockerError> {
        Err(DockerError)
    }
    pub fn inspect_container(&self, _id: &str) -> Result<ContainerFacts, DockerError> {
        Err(DockerError)
    }
    pub fn inspect_image(&self, _id: &str) -> Result<Option<ImageFacts>, DockerError> {
        Err(DockerError)
    }
}
