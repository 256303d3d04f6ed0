//! `GET /v2/<name>/tags/list`: every tag of a repository, for containers that follow versions.
//! Pages of [`PAGE_SIZE`] (`n=`), followed through the `Link: <…>; rel="next"` header on the
//! same origin, at most [`MAX_PAGES`] of them; a longer list is cut there and says so.

use super::{Problem, RegistryClient};
use crate::registry::transport::RegistryMethod;
use crate::registry::{CheckError, RepoTag, api_host};

/// Tags asked for per page.
pub(crate) const PAGE_SIZE: usize = 1000;
/// Pages read at most (so at least 20,000 tags with a registry that honours `n`).
pub(crate) const MAX_PAGES: usize = 20;

/// The tags of one repository.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagList {
    pub tags: Vec<String>,
    /// False when the list was cut at [`MAX_PAGES`] pages.
    pub complete: bool,
    /// Pages read.
    pub pages: usize,
}

#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryClient {
    /// Lists the tags of `item`'s repository (its tag is not used), with the same credentials
    /// and tokens as the manifest checks.
    pub fn list_tags(&self, item: &RepoTag) -> Result<TagList, CheckError> {
        let canonical = RepoTag {
            host: api_host(&item.host),
            ..item.clone()
        };
        let state = self.host_state(&canonical.host);
        let listed = self
            .open_session(&state, &[&canonical], false)
            .and_then(|(session, _)| {
                let mut list = TagList::default();
                let mut url = format!(
                    "{}/v2/{}/tags/list?n={PAGE_SIZE}",
                    state.base, canonical.repository
                );
                loop {
                    let (_, resp) = self.authorized(
                        &session,
                        &canonical,
                        &url,
                        Some("application/json"),
                        RegistryMethod::Get,
                        "tag list",
                    )?;
                    let page: Page = serde_json::from_slice(&resp.body).map_err(|e| {
                        Problem::Bad(format!("its tag list is not the JSON expected ({e})"))
                    })?;
                    list.tags.extend(page.tags.unwrap_or_default());
                    list.pages += 1;
                    let Some(next) = resp.header("link").and_then(|l| next_link(l, &state.base))
                    else {
                        list.complete = true;
                        return Ok(list);
                    };
                    if list.pages >= MAX_PAGES {
                        return Ok(list);
                    }
                    url = next?;
                }
            });
        listed.map_err(|problem| self.to_error(&problem, &canonical).for_item(item))
    }
}

/// The `rel="next"` target of a `Link` header, resolved against `base` (`scheme://host`).
/// `None` when there is no next page; an error when it points at another origin (the
/// registry's token must not be sent elsewhere).
fn next_link(header: &str, base: &str) -> Option<Result<String, Problem>> {
    for part in header.split(',') {
        let part = part.trim();
        let Some(end) = part.find('>') else { continue };
        let (target, params) = (part.get(1..end)?, &part[end + 1..]);
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next || !part.starts_with('<') {
            continue;
        }
        return Some(if target.starts_with('/') {
            Ok(format!("{base}{target}"))
        } else if target.starts_with(&format!("{base}/")) {
            Ok(target.to_string())
        } else {
            Err(Problem::Bad(format!(
                "its tag list points the next page at another origin ({}), which pullpilot does \
                 not follow",
                target.split('/').take(3).collect::<Vec<_>>().join("/")
            )))
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_resolve_on_the_same_origin_only() {
        let base = "http://127.0.0.1:5000";
        let got = |h: &str| next_link(h, base).map(|r| r.map_err(|_| ()));
        assert_eq!(
            got("</v2/app/tags/list?n=1000&last=b>; rel=\"next\""),
            Some(Ok(format!("{base}/v2/app/tags/list?n=1000&last=b")))
        );
        assert_eq!(
            got(&format!("<{base}/v2/app/tags/list?last=c>; rel=next")),
            Some(Ok(format!("{base}/v2/app/tags/list?last=c")))
        );
        assert_eq!(got("</v2/app/tags/list?last=a>; rel=\"prev\""), None);
        assert_eq!(
            got("<https://evil.example/v2/app/tags/list>; rel=\"next\""),
            Some(Err(()))
        );
        assert_eq!(got("garbage"), None);
    }
}
