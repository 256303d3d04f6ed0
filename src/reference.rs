//! Image references and digests, parsed and normalised by Docker's rules.
//!
//! Pure: no I/O. `ImageRef::parse("nginx")` gives `docker.io/library/nginx:latest`, whose
//! registry API host is `registry-1.docker.io`. The rules follow Docker's reference grammar: the
//! first path component is a registry only if it contains `.` or `:`, is `localhost`, or has an
//! uppercase letter; repository paths must be lowercase; `index.docker.io` (and, as other tools
//! do, `registry-1.docker.io`) mean Docker Hub, where one-component names gain `library/`.

use std::fmt;

/// The canonical domain of Docker Hub in references.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

const MAX_PATH_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A content digest such as `sha256:` followed by 64 lowercase hex digits.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses `algorithm:hex`; sha256 (64 hex) and sha512 (128 hex), lowercase only.
    pub fn parse(text: &str) -> Result<Digest, RefError> {
        let invalid = || RefError::InvalidDigest(text.to_string());
        let (algorithm, hex) = text.split_once(':').ok_or_else(invalid)?;
        let expected_len = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(invalid()),
        };
        let lower_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() != expected_len || !lower_hex {
            return Err(invalid());
        }
        Ok(Digest(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for tables.
    pub fn short(&self) -> &str {
        let hex = self.0.split_once(':').map_or(self.0.as_str(), |(_, h)| h);
        &hex[..hex.len().min(12)]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = RefError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Digest::parse(&value)
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> Self {
        value.0
    }
}

/// Why a reference string is not usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefError {
    Empty,
    /// The container was created from an image ID, not a name: there is no tag to follow.
    ImageId(String),
    InvalidDigest(String),
    Uppercase(String),
    InvalidName(String),
    InvalidTag(String),
    InvalidDomain(String),
    TooLong(String),
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefError::Empty => f.write_str("the image reference is empty"),
            RefError::ImageId(s) => write!(f, "`{s}` is an image ID, not a name with a tag"),
            RefError::InvalidDigest(s) => write!(
                f,
                "`{s}` is not a valid digest (expected sha256: followed by 64 lowercase hex digits)"
            ),
            RefError::Uppercase(s) => write!(f, "repository name `{s}` must be lowercase"),
            RefError::InvalidName(s) => write!(f, "`{s}` is not a valid repository name"),
            RefError::InvalidTag(s) => {
                write!(
                    f,
                    "`{s}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128)"
                )
            }
            RefError::InvalidDomain(s) => write!(f, "`{s}` is not a valid registry host"),
            RefError::TooLong(s) => {
                write!(f, "repository name `{s}` is longer than 255 characters")
            }
        }
    }
}

impl std::error::Error for RefError {}

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a reference the way `docker pull` does and normalises it.
    pub fn parse(input: &str) -> Result<ImageRef, RefError> {
        if input.is_empty() {
            return Err(RefError::Empty);
        }
        if is_image_id(input) {
            return Err(RefError::ImageId(input.to_string()));
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (input, None),
        };
        let (name, tag) = split_tag(name_and_tag);
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        let (domain, path) = split_domain(name);
        validate_domain(&domain)?;
        validate_path(&path)?;
        let path = if domain == DOCKER_HUB_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.len() > MAX_PATH_LEN {
            return Err(RefError::TooLong(path));
        }
        // Docker's default tag, applied here so `nginx` and `nginx:latest` are equal.
        let tag = tag
            .map(str::to_string)
            .or_else(|| digest.is_none().then(|| "latest".to_string()));
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The canonical domain, `docker.io` for Docker Hub.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The host to send registry API requests to.
    pub fn api_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_API_HOST
        } else {
            &self.domain
        }
    }

    pub fn is_docker_hub(&self) -> bool {
        self.domain == DOCKER_HUB_DOMAIN
    }

    /// The repository path inside the registry, e.g. `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.path
    }

    /// The tag, `latest` when none was written and no digest was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// A digest written into the reference (`repo@sha256:…`), which pins it.
    pub fn pinned_digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, the name Docker uses for `fromImage` and in `RepoDigests`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Whether two references name the same repository after normalisation.
    pub fn same_repository(&self, other: &ImageRef) -> bool {
        self.domain.eq_ignore_ascii_case(&other.domain) && self.path == other.path
    }

    /// `name:tag`, the normalised tagged form.
    pub fn tagged(&self) -> String {
        format!("{}:{}", self.name(), self.tag().unwrap_or("latest"))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The digest part of a `RepoDigests` entry (`name@sha256:…`) if its name is the same
/// repository as `reference`.
pub fn repo_digest_for(entry: &str, reference: &ImageRef) -> Option<Digest> {
    let parsed = ImageRef::parse(entry).ok()?;
    let digest = parsed.pinned_digest()?.clone();
    parsed.same_repository(reference).then_some(digest)
}

fn is_image_id(input: &str) -> bool {
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits `name:tag`; a colon before the last `/` belongs to a port.
fn split_tag(input: &str) -> (&str, Option<&str>) {
    match input.rfind(':') {
        Some(colon) if input[colon..].find('/').is_none() => {
            (&input[..colon], Some(&input[colon + 1..]))
        }
        _ => (input, None),
    }
}

fn split_domain(name: &str) -> (String, String) {
    let Some((first, rest)) = name.split_once('/') else {
        return (DOCKER_HUB_DOMAIN.to_string(), name.to_string());
    };
    let is_domain = first == "localhost"
        || first.contains('.')
        || first.contains(':')
        || first.bytes().any(|b| b.is_ascii_uppercase());
    if !is_domain {
        return (DOCKER_HUB_DOMAIN.to_string(), name.to_string());
    }
    let hub_alias = ["index.docker.io", "registry-1.docker.io", DOCKER_HUB_DOMAIN]
        .iter()
        .any(|alias| first.eq_ignore_ascii_case(alias));
    if hub_alias {
        (DOCKER_HUB_DOMAIN.to_string(), rest.to_string())
    } else {
        (first.to_string(), rest.to_string())
    }
}

fn validate_tag(tag: &str) -> Result<(), RefError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && word(tag.as_bytes()[0])
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(RefError::InvalidTag(tag.to_string()))
    }
}

fn validate_domain(domain: &str) -> Result<(), RefError> {
    let invalid = || RefError::InvalidDomain(domain.to_string());
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(invalid)?;
        if v6.contains('%') || v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid());
        }
        return match after.strip_prefix(':') {
            Some(port) if port_ok(port) => Ok(()),
            None if after.is_empty() => Ok(()),
            _ => Err(invalid()),
        };
    }
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    if port.is_some_and(|p| !port_ok(p)) {
        return Err(invalid());
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    if host.split('.').all(component_ok) {
        Ok(())
    } else {
        Err(invalid())
    }
}

fn validate_path(path: &str) -> Result<(), RefError> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(RefError::Uppercase(path.to_string()));
    }
    if path.is_empty() || !path.split('/').all(path_component_ok) {
        return Err(RefError::InvalidName(path.to_string()));
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn path_component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            expect_alnum = false;
            i += 1;
            continue;
        }
        if expect_alnum {
            return false;
        }
        let sep_start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
        expect_alnum = true;
    }
    !bytes.is_empty() && !expect_alnum
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// (input, api host, repository, tag, pinned digest)
    #[rustfmt::skip]
    const VALID: &[(&str, &str, &str, Option<&str>, bool)] = &[
        ("nginx",                                 "registry-1.docker.io", "library/nginx",       Some("latest"),      false),
        ("nginx:1.27-alpine",                     "registry-1.docker.io", "library/nginx",       Some("1.27-alpine"), false),
        ("library/nginx",                         "registry-1.docker.io", "library/nginx",       Some("latest"),      false),
        ("bitnami/redis:7.2",                     "registry-1.docker.io", "bitnami/redis",       Some("7.2"),         false),
        ("docker.io/nginx",                       "registry-1.docker.io", "library/nginx",       Some("latest"),      false),
        ("index.docker.io/library/nginx:stable",  "registry-1.docker.io", "library/nginx",       Some("stable"),      false),
        ("docker.io/library/foo/bar",             "registry-1.docker.io", "library/foo/bar",     Some("latest"),      false),
        ("registry-1.docker.io/nginx",            "registry-1.docker.io", "library/nginx",       Some("latest"),      false),
        ("ghcr.io/owner/app:v1",                  "ghcr.io",              "owner/app",           Some("v1"),          false),
        ("quay.io/prometheus/node-exporter",      "quay.io",              "prometheus/node-exporter", Some("latest"), false),
        ("us-docker.pkg.dev/proj/repo/img:t",     "us-docker.pkg.dev",    "proj/repo/img",       Some("t"),           false),
        ("1234567890.dkr.ecr.eu-west-1.amazonaws.com/app:prod", "1234567890.dkr.ecr.eu-west-1.amazonaws.com", "app", Some("prod"), false),
        ("localhost/app",                         "localhost",            "app",                 Some("latest"),      false),
        ("localhost:5000/team/app:dev",           "localhost:5000",       "team/app",            Some("dev"),         false),
        ("myreg:5000/app",                        "myreg:5000",           "app",                 Some("latest"),      false),
        ("myreg/app",                             "registry-1.docker.io", "myreg/app",           Some("latest"),      false),
        ("192.168.1.10:5000/app",                 "192.168.1.10:5000",    "app",                 Some("latest"),      false),
        ("127.0.0.1:15001/pptb/app:v2",           "127.0.0.1:15001",      "pptb/app",            Some("v2"),          false),
        ("[fc00::1]:5000/app",                    "[fc00::1]:5000",       "app",                 Some("latest"),      false),
        ("[::1]/app:x",                           "[::1]",                "app",                 Some("x"),           false),
        ("Foo/bar",                               "Foo",                  "bar",                 Some("latest"),      false),
        ("nginx:Latest",                          "registry-1.docker.io", "library/nginx",       Some("Latest"),      false),
        ("localhost",                             "registry-1.docker.io", "library/localhost",   Some("latest"),      false),
        ("LOCALDOMAIN/fooo",                      "LOCALDOMAIN",          "fooo",                Some("latest"),      false),
        ("xn--n3h.com:18080/foo",                 "xn--n3h.com:18080",    "foo",                 Some("latest"),      false),
        ("a/b__c/d-e--f/g.h:_tag",                "registry-1.docker.io", "a/b__c/d-e--f/g.h",   Some("_tag"),        false),
    ];

    #[test]
    fn normalises_like_docker() {
        for &(input, host, repository, tag, pinned) in VALID {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.api_host(), host, "host of {input}");
            assert_eq!(r.repository(), repository, "repository of {input}");
            assert_eq!(r.tag(), tag, "tag of {input}");
            assert_eq!(r.pinned_digest().is_some(), pinned, "pin of {input}");
        }
    }

    #[test]
    fn digest_references_are_pinned_with_or_without_tag() {
        let only = ImageRef::parse(&format!("nginx@{D}")).unwrap();
        assert_eq!(only.pinned_digest().unwrap().as_str(), D);
        assert_eq!(only.tag(), None);
        assert_eq!(only.repository(), "library/nginx");
        let both = ImageRef::parse(&format!("ghcr.io/a/b:1.27@{D}")).unwrap();
        assert_eq!(both.pinned_digest().unwrap().as_str(), D);
        assert_eq!(both.tag(), Some("1.27"));
        assert_eq!(both.to_string(), format!("ghcr.io/a/b:1.27@{D}"));
    }

    type IsExpected = fn(&RefError) -> bool;

    #[rustfmt::skip]
    const INVALID: &[(&str, IsExpected)] = &[
        ("",                             |e| matches!(e, RefError::Empty)),
        ("example.com/App",              |e| matches!(e, RefError::Uppercase(_))),
        ("NGINX",                        |e| matches!(e, RefError::Uppercase(_))),
        ("nginx@sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", |e| matches!(e, RefError::InvalidDigest(_))),
        ("nginx@sha256:abc",             |e| matches!(e, RefError::InvalidDigest(_))),
        ("nginx@md5:0123456789abcdef0123456789abcdef", |e| matches!(e, RefError::InvalidDigest(_))),
        ("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", |e| matches!(e, RefError::ImageId(_))),
        (D,                              |e| matches!(e, RefError::ImageId(_))),
        ("nginx:",                       |e| matches!(e, RefError::InvalidTag(_))),
        ("nginx:-bad",                   |e| matches!(e, RefError::InvalidTag(_))),
        ("nginx:a/b",                    |e| matches!(e, RefError::InvalidDomain(_))),
        ("a//b",                         |e| matches!(e, RefError::InvalidName(_))),
        ("-a/b",                         |e| matches!(e, RefError::InvalidName(_))),
        ("a/b-",                         |e| matches!(e, RefError::InvalidName(_))),
        ("a/b___c",                      |e| matches!(e, RefError::InvalidName(_))),
        ("example.com:port/app",         |e| matches!(e, RefError::InvalidDomain(_))),
        ("[fe80::1%eth0]:5000/app",      |e| matches!(e, RefError::InvalidDomain(_))),
        ("exa_mple.com/app",             |e| matches!(e, RefError::InvalidDomain(_))),
    ];

    #[test]
    fn rejects_invalid_references_with_the_right_error() {
        for (input, is_expected) in INVALID {
            let err = ImageRef::parse(input).expect_err(input);
            assert!(is_expected(&err), "{input}: unexpected error {err:?}");
            assert!(!err.to_string().is_empty());
        }
        let long = format!("a/{}", "b".repeat(260));
        assert!(matches!(ImageRef::parse(&long), Err(RefError::TooLong(_))));
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(matches!(
            ImageRef::parse(&long_tag),
            Err(RefError::InvalidTag(_))
        ));
    }

    #[test]
    fn repo_digest_matches_only_the_same_repository() {
        let container = ImageRef::parse("nginx:1.27").unwrap();
        assert_eq!(
            repo_digest_for(&format!("nginx@{D}"), &container)
                .unwrap()
                .as_str(),
            D,
            "Docker records Hub digests under the familiar name"
        );
        assert!(repo_digest_for(&format!("docker.io/library/nginx@{D}"), &container).is_some());
        assert!(repo_digest_for(&format!("ghcr.io/library/nginx@{D}"), &container).is_none());
        assert!(repo_digest_for(&format!("nginx-other@{D}"), &container).is_none());
        assert!(repo_digest_for("nginx:1.27", &container).is_none());
    }

    #[test]
    fn digest_short_form_and_validation() {
        let d = Digest::parse(D).unwrap();
        assert_eq!(d.short(), "0123456789ab");
        assert!(Digest::parse("sha256:").is_err());
        assert!(Digest::parse("0123").is_err());
    }
}
