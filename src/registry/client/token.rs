//! The token flow of [`RegistryClient`]: a 401 that shows a new challenge or an expired shared
//! token, Basic and Bearer authorization, token requests (GET, and POST with a refresh token),
//! and the cache of tokens shared by the checks of one host.

use super::{
    Authz, BTreeSet, Credential, HostAuth, HostSession, HostState, Instant, Ordering, PoisonError,
    Problem, RegistryClient, RegistryMethod, RegistryRequest, RepoTag, Resolved, Response,
    SystemTime, TokenKey, allows_plain_http, describe, encode, parse_token_response, pull_scope,
    select_auth_from_headers, with_query,
};

impl RegistryClient {
    /// After a 401: adopt a challenge the ping did not show, or renew a shared token once.
    pub(super) fn after_401(
        &self,
        session: &HostSession<'_>,
        tag: &RepoTag,
        authz: &Authz,
        resp: &Response,
    ) -> Result<Option<Authz>, Problem> {
        let offered = select_auth_from_headers(resp.header_all("www-authenticate"));
        let host = session.host;
        let next = if offered != HostAuth::Anonymous && offered != host.auth() {
            log::debug!(
                "{}: a manifest 401 asks for {}",
                host.host,
                describe(&offered)
            );
            *host.auth.lock().unwrap_or_else(PoisonError::into_inner) = Some(offered);
            self.authorize(session, &tag.repository, true)?
        } else if authz.renewable {
            self.authorize(session, &tag.repository, true)?
        } else {
            return Ok(None);
        };
        // Sending the same thing again cannot change the answer.
        Ok((next.header.is_some() && next.header != authz.header).then_some(next))
    }

    /// The `Authorization` for one repository on this host; `fresh` skips the token cache.
    pub(super) fn authorize(
        &self,
        session: &HostSession<'_>,
        repository: &str,
        fresh: bool,
    ) -> Result<Authz, Problem> {
        let host = session.host;
        let origin = session.credential.as_ref().map(|r| r.origin.to_string());
        if origin.is_some() && host.refused.load(Ordering::SeqCst) {
            return Err(Problem::Unauthorized(origin));
        }
        if let Some(Credential::RegistryToken(token)) = session.credential_kind() {
            return Ok(Authz {
                header: Some(format!("Bearer {token}")),
                sent: origin,
                renewable: false,
            });
        }
        match host.auth() {
            HostAuth::Anonymous => Ok(Authz::ANONYMOUS),
            HostAuth::Basic => Ok(session
                .credential_kind()
                .and_then(Credential::basic_header)
                .map_or(Authz::ANONYMOUS, |header| Authz {
                    header: Some(header),
                    sent: origin,
                    renewable: false,
                })),
            HostAuth::Bearer { realm, service } => {
                let key = Self::token_key(&realm, service.as_deref(), session.credential.as_ref());
                if !fresh && let Some(token) = self.tokens.get(&key, repository, Instant::now()) {
                    return Ok(Authz {
                        header: Some(format!("Bearer {token}")),
                        sent: origin,
                        renewable: !session.fresh_single.contains(repository),
                    });
                }
                let repos = BTreeSet::from([repository.to_owned()]);
                let token = self.fetch_token(session, &realm, service.as_deref(), &repos)?;
                Ok(Authz {
                    header: Some(format!("Bearer {token}")),
                    sent: origin,
                    renewable: false,
                })
            }
        }
    }

    pub(super) fn token_key(
        realm: &str,
        service: Option<&str>,
        credential: Option<&Resolved>,
    ) -> TokenKey {
        TokenKey {
            realm: realm.to_owned(),
            service: service.map(str::to_owned),
            identity: credential
                .map_or_else(|| "anonymous".to_owned(), |r| r.credential.identity()),
        }
    }

    /// One token request for `repos` (all scopes at once); caches and returns the token.
    pub(super) fn fetch_token(
        &self,
        session: &HostSession<'_>,
        realm: &str,
        service: Option<&str>,
        repos: &BTreeSet<String>,
    ) -> Result<String, Problem> {
        let host = session.host;
        let credential = session.credential.as_ref();
        let origin = credential.map(|r| r.origin.to_string());
        let realm_origin = crate::registry::transport::origin_of(realm).ok_or_else(|| {
            Problem::Bad(format!("its token service address {realm:?} is not a URL"))
        })?;
        if realm_origin.0 != "https"
            && !(realm_origin.0 == "http"
                && allows_plain_http(&realm_origin.1, &self.insecure_hosts))
        {
            return Err(Problem::Bad(format!(
                "its token service {} is not HTTPS; pullpilot will not send requests there",
                crate::registry::transport::redact(realm)
            )));
        }
        let scopes: Vec<String> = repos.iter().map(|r| pull_scope(r)).collect();
        let (resp, post) = match credential.map(|r| &r.credential) {
            Some(Credential::IdentityToken { username, token }) => {
                let resp = self.post_refresh_token(host, realm, service, token, &scopes)?;
                if resp.status == 404 {
                    // Not an OAuth2 token service: the same token as a Basic password.
                    let basic = Credential::Basic {
                        username: username.clone().unwrap_or_else(|| "<token>".to_owned()),
                        password: token.clone(),
                    };
                    (
                        self.get_token(host, realm, service, &scopes, Some(&basic))?,
                        false,
                    )
                } else {
                    (resp, true)
                }
            }
            Some(basic @ Credential::Basic { .. }) => (
                self.get_token(host, realm, service, &scopes, Some(basic))?,
                false,
            ),
            Some(Credential::RegistryToken(_)) | None => {
                (self.get_token(host, realm, service, &scopes, None)?, false)
            }
        };
        let refused = matches!(resp.status, 401 | 403) || (post && resp.status == 400);
        if refused {
            if origin.is_some() {
                host.refused.store(true, Ordering::SeqCst);
            }
            return Err(Problem::Unauthorized(origin));
        }
        if !(200..300).contains(&resp.status) {
            return Err(Problem::Bad(format!(
                "its token service {} answered HTTP {}",
                crate::registry::transport::redact(realm),
                resp.status
            )));
        }
        let token =
            parse_token_response(&resp.body, Instant::now(), SystemTime::now()).map_err(|why| {
                Problem::Bad(format!(
                    "{why} (from {})",
                    crate::registry::transport::redact(realm)
                ))
            })?;
        let value = token.value.clone();
        let key = Self::token_key(realm, service, credential);
        self.tokens.insert(key, repos.clone(), token);
        Ok(value)
    }

    pub(super) fn get_token(
        &self,
        host: &HostState,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        basic: Option<&Credential>,
    ) -> Result<Response, Problem> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            pairs.push(("service", service));
        }
        pairs.extend(scopes.iter().map(|s| ("scope", s.as_str())));
        let header = basic.and_then(Credential::basic_header);
        if let Some(Credential::Basic { username, .. }) = basic {
            pairs.push(("account", username));
        }
        let req = RegistryRequest {
            method: RegistryMethod::Get,
            url: with_query(realm, &pairs),
            accept: None,
            authorization: header.as_deref(),
            form: None,
        };
        self.transport
            .send(&host.gate, &req)
            .map_err(Problem::Transport)
    }

    pub(super) fn post_refresh_token(
        &self,
        host: &HostState,
        realm: &str,
        service: Option<&str>,
        refresh_token: &str,
        scopes: &[String],
    ) -> Result<Response, Problem> {
        let scope = scopes.join(" ");
        let mut fields = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(service) = service {
            fields.push(("service", service));
        }
        fields.push(("client_id", "pullpilot"));
        fields.push(("scope", &scope));
        let form: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let req = RegistryRequest {
            method: RegistryMethod::Post,
            url: realm.to_owned(),
            accept: None,
            authorization: None,
            form: Some(form.join("&")),
        };
        self.transport
            .send(&host.gate, &req)
            .map_err(Problem::Transport)
    }
}
