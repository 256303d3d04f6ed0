//! Image calls of the facade: inspect, pull by digest, tag, remove.
//!
//! Owns: reading a pull stream to its end and judging it (an error line anywhere is a failed
//! pull), and the `X-Registry-Auth` header. Must not: resolve credentials or digests (the
//! registry module does), or pull by tag.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt as _;

use super::error::Op;
use super::types;
use super::{Docker, DockerError, ImageFacts, ImageRemoval, request_modifier};

fn image(reference: &str) -> String {
    format!("image {reference:?}")
}

impl Docker {
    /// The facts of a local image by ID or reference; `None` when it is not there.
    pub fn inspect_image(&self, id_or_reference: &str) -> Result<Option<ImageFacts>, DockerError> {
        let op = Op::new("inspecting", image(id_or_reference));
        match self.run(
            &op,
            self.limits.call,
            self.api.inspect_image(id_or_reference),
        ) {
            Ok(inspect) => Ok(Some(types::image_facts(&inspect))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Pulls exactly `repository@digest` (e.g. `docker.io/library/nginx` and `sha256:…`), for
    /// `platform` (`os/arch[/variant]`) when given, sending `registry_auth` (an encoded
    /// `X-Registry-Auth` value) when given. Reads the progress stream to its end; any error line
    /// fails the pull. Returns the facts of the pulled image. Does not move any tag: call
    /// [`Docker::tag_image`] afterwards.
    pub fn pull_by_digest(
        &self,
        repository: &str,
        digest: &str,
        platform: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<ImageFacts, DockerError> {
        let reference = format!("{repository}@{digest}");
        check_repository(repository)?;
        check_digest(digest, &reference)?;
        let auth = registry_auth
            .map(|a| normalise_registry_auth(a, &reference))
            .transpose()?;
        let op = Op::new("pulling", image(&reference));
        let mut options = CreateImageOptionsBuilder::new()
            .from_image(repository)
            .tag(digest);
        if let Some(p) = platform {
            options = options.platform(p);
        }
        let options = options.build();
        let api = match auth {
            Some(a) => self
                .api
                .clone()
                .with_request_modifier(request_modifier(self.api_version, Some(a))),
            None => self.api.clone(),
        };
        let endpoint = self.endpoint.clone();
        let pull = async move {
            let mut watch = PullWatch::default();
            let mut stream = api.create_image(Some(options), None, None);
            while let Some(item) = stream.next().await {
                watch.observe(item)?;
            }
            Ok::<_, bollard::errors::Error>(watch)
        };
        let watch = self.run(&op, self.limits.pull, pull)?;
        if let Some(message) = watch.failure() {
            return Err(DockerError::Pull {
                endpoint,
                image: reference,
                message,
            });
        }
        // Belt and braces: the image must now be in the store under exactly that digest.
        match self.inspect_image(&reference)? {
            Some(facts) => Ok(facts),
            None => Err(DockerError::Pull {
                endpoint,
                image: reference,
                message: format!(
                    "the stream ended without an error ({} lines) but the image is not in the \
                     image store",
                    watch.lines
                ),
            }),
        }
    }

    /// Tags `source` (an ID or reference such as `repo@sha256:…`) as `repo:tag`, moving the tag.
    pub fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), DockerError> {
        let op = Op {
            action: format!("tagging {} as \"{repo}:{tag}\"", image(source)),
            object: image(source),
        };
        let options = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
        self.run(
            &op,
            self.limits.call,
            self.api.tag_image(source, Some(options)),
        )
    }

    /// Removes an image without force. An image still used by a container or still referenced
    /// by other names is kept and reported as [`ImageRemoval::InUse`], which is benign.
    pub fn remove_image(&self, id_or_reference: &str) -> Result<ImageRemoval, DockerError> {
        let op = Op::new("removing", image(id_or_reference));
        let options = RemoveImageOptionsBuilder::new()
            .force(false)
            .noprune(false)
            .build();
        match self.run(
            &op,
            self.limits.call,
            self.api.remove_image(id_or_reference, Some(options), None),
        ) {
            Ok(_) => Ok(ImageRemoval::Removed),
            Err(DockerError::Api {
                status: 409,
                message,
                ..
            }) => Ok(ImageRemoval::InUse { message }),
            Err(e) if e.is_not_found() => Ok(ImageRemoval::NotFound),
            Err(e) => Err(e),
        }
    }
}

/// What a pull stream said, judged line by line.
#[derive(Debug, Default)]
struct PullWatch {
    /// Every error the stream reported, in order.
    errors: Vec<String>,
    lines: usize,
}

impl PullWatch {
    /// Looks at one stream item. Error lines are recorded (and reading goes on to the end);
    /// an HTTP error status is recorded too; a transport failure ends the pull.
    fn observe(
        &mut self,
        item: Result<CreateImageInfo, bollard::errors::Error>,
    ) -> Result<(), bollard::errors::Error> {
        use bollard::errors::Error as B;
        self.lines += 1;
        match item {
            Ok(CreateImageInfo {
                error_detail: Some(detail),
                ..
            }) => {
                self.errors.push(detail.message.unwrap_or_else(|| {
                    format!(
                        "an error line without a message (code {})",
                        detail.code.unwrap_or_default()
                    )
                }));
                Ok(())
            }
            Ok(info) => {
                log::debug!(
                    "pull: {} {}",
                    info.id.unwrap_or_default(),
                    info.status.unwrap_or_default()
                );
                Ok(())
            }
            // bollard turns an `errorDetail` line into this error.
            Err(B::DockerStreamError { error }) => {
                self.errors.push(error);
                Ok(())
            }
            // The daemon refused before streaming (unknown repository, denied, bad platform).
            Err(B::DockerResponseServerError {
                status_code,
                message,
            }) => {
                self.errors
                    .push(format!("{} (HTTP {status_code})", message.trim()));
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    fn failure(&self) -> Option<String> {
        match self.errors.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            [first, ..] => Some(format!(
                "{first} (and {} more errors)",
                self.errors.len() - 1
            )),
        }
    }
}

fn check_repository(repository: &str) -> Result<(), DockerError> {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    if repository.is_empty() || repository.contains('@') || last.contains(':') {
        return Err(DockerError::Config {
            message: format!(
                "cannot pull {repository:?}: give the repository without tag or digest, e.g. \
                 docker.io/library/nginx"
            ),
        });
    }
    Ok(())
}

fn check_digest(digest: &str, reference: &str) -> Result<(), DockerError> {
    let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && hex.len() >= 32
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if valid {
        Ok(())
    } else {
        Err(DockerError::Config {
            message: format!(
                "cannot pull {reference:?}: {digest:?} is not a digest (expected sha256:<64 hex>); \
                 pullpilot pulls by digest only"
            ),
        })
    }
}

/// The daemon decodes `X-Registry-Auth` as URL-safe base64 *with* padding and silently pulls
/// anonymously when that fails, so accept the standard alphabet or missing padding but send
/// the canonical form, and refuse anything that is not base64 at all.
fn normalise_registry_auth(auth: &str, reference: &str) -> Result<String, DockerError> {
    let mut text: String = auth
        .trim()
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    match URL_SAFE.decode(&text) {
        Ok(_) => Ok(text),
        Err(e) => Err(DockerError::Config {
            message: format!(
                "cannot pull {reference:?}: the registry credentials are not valid base64 ({e}); \
                 check the entry for this registry in Docker's config.json"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(text: &str) -> Vec<Result<CreateImageInfo, bollard::errors::Error>> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Ok(serde_json::from_str(l).expect("stream line parses")))
            .collect()
    }

    fn judge(items: Vec<Result<CreateImageInfo, bollard::errors::Error>>) -> PullWatch {
        let mut watch = PullWatch::default();
        for item in items {
            watch.observe(item).expect("no transport error");
        }
        watch
    }

    const GOOD: &str = r#"
{"status":"Pulling from pptb/app","id":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}
{"status":"Pulling fs layer","progressDetail":{},"id":"3a4b5c6d7e8f"}
{"status":"Downloading","progressDetail":{"current":1024,"total":2048},"progress":"[=====>  ]","id":"3a4b5c6d7e8f"}
{"status":"Pull complete","progressDetail":{},"id":"3a4b5c6d7e8f"}
{"status":"Digest: sha256:1111111111111111111111111111111111111111111111111111111111111111"}
{"status":"Status: Downloaded newer image for 127.0.0.1:15001/pptb/app@sha256:1111111111111111111111111111111111111111111111111111111111111111"}
"#;

    #[test]
    fn clean_stream_is_a_success() {
        let watch = judge(stream(GOOD));
        assert_eq!(watch.failure(), None);
        assert_eq!(watch.lines, 6);
    }

    #[test]
    fn mid_stream_error_line_fails_the_pull() {
        // A layer download dies after output has started: HTTP 200, then an error line.
        let text = format!(
            "{GOOD}{}\n",
            r#"{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}"#
        );
        let watch = judge(stream(&text));
        assert_eq!(watch.failure().as_deref(), Some("unexpected EOF"));
    }

    #[test]
    fn error_line_without_message_still_fails() {
        let watch = judge(stream(r#"{"errorDetail":{"code":1}}"#));
        assert_eq!(
            watch.failure().as_deref(),
            Some("an error line without a message (code 1)")
        );
    }

    #[test]
    fn errors_bollard_already_converted_are_recorded_and_reading_goes_on() {
        let mut items = stream(GOOD);
        items.insert(
            2,
            Err(bollard::errors::Error::DockerStreamError {
                error: "toomanyrequests: rate limit".to_owned(),
            }),
        );
        items.push(Err(bollard::errors::Error::DockerStreamError {
            error: "second".to_owned(),
        }));
        let watch = judge(items);
        assert_eq!(
            watch.failure().as_deref(),
            Some("toomanyrequests: rate limit (and 1 more errors)")
        );
        assert_eq!(watch.lines, 8);
    }

    #[test]
    fn refusal_before_streaming_fails_with_the_status() {
        let watch = judge(vec![Err(
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message: "pull access denied for x, repository does not exist".to_owned(),
            },
        )]);
        assert_eq!(
            watch.failure().as_deref(),
            Some("pull access denied for x, repository does not exist (HTTP 404)")
        );
    }

    #[test]
    fn transport_failure_ends_the_pull() {
        let mut watch = PullWatch::default();
        let err = bollard::errors::Error::IOError {
            err: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        };
        assert!(watch.observe(Err(err)).is_err());
    }

    #[test]
    fn only_digests_and_bare_repositories_are_pulled() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(check_digest(&digest, "r").is_ok());
        assert!(check_digest("latest", "r").is_err());
        assert!(check_digest("sha256:xyz", "r").is_err());
        assert!(check_repository("127.0.0.1:15001/pptb/app").is_ok());
        assert!(check_repository("docker.io/library/nginx").is_ok());
        assert!(check_repository("nginx:latest").is_err());
        assert!(check_repository("127.0.0.1:15001/pptb/app:1").is_err());
        assert!(check_repository("nginx@sha256:abc").is_err());
    }

    #[test]
    fn registry_auth_is_sent_url_safe_and_padded() {
        let json = br#"{"username":"u?>","password":"p~~~","serveraddress":"127.0.0.1:5000"}"#;
        let standard = base64::engine::general_purpose::STANDARD.encode(json);
        assert!(standard.contains('+') || standard.contains('/'));
        let canonical = URL_SAFE.encode(json);
        assert_eq!(
            normalise_registry_auth(&standard, "r").expect("ok"),
            canonical
        );
        assert_eq!(
            normalise_registry_auth(canonical.trim_end_matches('='), "r").expect("ok"),
            canonical
        );
        assert!(normalise_registry_auth("not base64!", "r").is_err());
    }
}
