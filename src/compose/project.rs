//! A compose project's files as its containers record them: the labels compose puts on every
//! container it makes (project name, working directory, compose files, env files).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

const PROJECT: &str = "com.docker.compose.project";
const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
const ENVIRONMENT_FILE: &str = "com.docker.compose.project.environment_file";

/// Where compose reads a project from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectFiles {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    pub env_files: Vec<PathBuf>,
}

/// Why a project cannot be handed to compose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotUsable(pub String);

impl fmt::Display for NotUsable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ProjectFiles {
    /// The project a container belongs to, from its labels, with every file checked to be
    /// readable here.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<ProjectFiles, NotUsable> {
        let files = ProjectFiles::parse(labels)?;
        files.check_readable()?;
        Ok(files)
    }

    /// The same without touching the file system.
    pub fn parse(labels: &BTreeMap<String, String>) -> Result<ProjectFiles, NotUsable> {
        let get = |k: &str| labels.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let name = get(PROJECT).ok_or_else(|| NotUsable("it is not a compose container".into()))?;
        let working_dir = get(WORKING_DIR).ok_or_else(|| {
            NotUsable(format!(
                "it has no {WORKING_DIR} label (made by compose v1 or by hand)"
            ))
        })?;
        let config_files: Vec<PathBuf> = get(CONFIG_FILES)
            .ok_or_else(|| NotUsable(format!("it has no {CONFIG_FILES} label")))?
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .collect();
        if config_files.is_empty() || config_files.iter().any(|f| !f.is_absolute()) {
            return Err(NotUsable(format!(
                "its compose files are not recorded as absolute paths ({:?}; made from stdin?)",
                get(CONFIG_FILES).unwrap_or_default()
            )));
        }
        let env_files = get(ENVIRONMENT_FILE)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(|f| Path::new(working_dir).join(f))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ProjectFiles {
            name: name.to_string(),
            working_dir: PathBuf::from(working_dir),
            config_files,
            env_files,
        })
    }

    fn check_readable(&self) -> Result<(), NotUsable> {
        if !self.working_dir.is_dir() {
            return Err(NotUsable(format!(
                "its project directory {} is not here",
                self.working_dir.display()
            )));
        }
        for file in self.config_files.iter().chain(&self.env_files) {
            if let Err(e) = std::fs::File::open(file) {
                return Err(NotUsable(format!(
                    "its compose file {} cannot be read ({e})",
                    file.display()
                )));
            }
        }
        Ok(())
    }

    /// `-p NAME --project-directory DIR -f FILE… [--env-file FILE…]`.
    pub fn global_args(&self) -> Vec<String> {
        let mut args = vec![
            "--project-name".to_string(),
            self.name.clone(),
            "--project-directory".to_string(),
            self.working_dir.display().to_string(),
        ];
        for f in &self.config_files {
            args.push("--file".into());
            args.push(f.display().to_string());
        }
        for f in &self.env_files {
            args.push("--env-file".into());
            args.push(f.display().to_string());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_project_is_read_from_compose_labels() {
        let l = labels(&[
            (PROJECT, "shop"),
            (WORKING_DIR, "/srv/shop"),
            (
                CONFIG_FILES,
                "/srv/shop/compose.yaml,/srv/shop/compose.override.yaml",
            ),
            (ENVIRONMENT_FILE, "/srv/shop/.env.prod"),
        ]);
        let p = ProjectFiles::parse(&l).unwrap();
        assert_eq!(p.name, "shop");
        assert_eq!(p.config_files.len(), 2);
        assert_eq!(
            p.global_args(),
            [
                "--project-name",
                "shop",
                "--project-directory",
                "/srv/shop",
                "--file",
                "/srv/shop/compose.yaml",
                "--file",
                "/srv/shop/compose.override.yaml",
                "--env-file",
                "/srv/shop/.env.prod"
            ]
        );
    }

    #[test]
    fn missing_or_odd_labels_say_why() {
        let none = ProjectFiles::parse(&labels(&[])).unwrap_err();
        assert!(none.0.contains("not a compose container"), "{none}");
        let v1 = ProjectFiles::parse(&labels(&[(PROJECT, "shop")])).unwrap_err();
        assert!(v1.0.contains(WORKING_DIR), "{v1}");
        let stdin = ProjectFiles::parse(&labels(&[
            (PROJECT, "shop"),
            (WORKING_DIR, "/srv/shop"),
            (CONFIG_FILES, "-"),
        ]))
        .unwrap_err();
        assert!(stdin.0.contains("absolute"), "{stdin}");
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose.yaml");
        let l = labels(&[
            (PROJECT, "shop"),
            (WORKING_DIR, dir.path().to_str().unwrap()),
            (CONFIG_FILES, file.to_str().unwrap()),
        ]);
        let err = ProjectFiles::from_labels(&l).unwrap_err();
        assert!(err.0.contains("compose.yaml cannot be read"), "{err}");
        std::fs::write(&file, "services: {}\n").unwrap();
        assert!(ProjectFiles::from_labels(&l).is_ok());
        std::fs::remove_dir_all(dir.path()).unwrap();
        let gone = ProjectFiles::from_labels(&l).unwrap_err();
        assert!(gone.0.contains("is not here"), "{gone}");
    }
}
