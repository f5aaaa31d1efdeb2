//! What the module needs to know, with defaults, checked once by [`AuthConfigBuilder::build`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use url::Url;

use crate::client_auth::ClientAuthMethod;
use crate::client_credential::{CERTIFICATE_FILE_FIELD, ClientCertificate, ClientCredential};
use crate::metadata::{is_loopback_host, is_secure_or_loopback};
use crate::roles::{RoleClaim, RoleHierarchy, RoleSource};
use crate::rules::{Access, RuleSet, RuleSpec};
use crate::tenant::{self, TenantPolicy};
use crate::token_keys::TokenKeys;
use std::collections::HashMap;

/// Sign-in and authorization configuration. Every absolute URL here is derived from the
/// configured public URL, never from request headers (which any client can forge).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub(crate) authority: Url,
    pub(crate) client_id: String,
    pub(crate) credential: ClientCredential,
    pub(crate) login_path: String,
    pub(crate) logout_path: String,
    /// Single sign-out routes, built once: the route rules compare every request's path.
    backchannel_logout_path: String,
    frontchannel_logout_path: String,
    pub(crate) redirect_url: Url,
    pub(crate) post_logout_redirect_url: Url,
    pub(crate) scopes: Vec<String>,
    pub(crate) prompt: Option<String>,
    pub(crate) allowed_tenants: TenantPolicy,
    pub(crate) api_audiences: Vec<String>,
    pub(crate) api_scopes: Vec<String>,
    pub(crate) api_prefix: String,
    pub(crate) jwks_refresh_cooldown: Duration,
    pub(crate) discovery_retry: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) clock_leeway_secs: u64,
    pub(crate) pending_ttl: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Duration,
    pub(crate) roles: RoleHierarchy,
    pub(crate) role_source: RoleSource,
    pub(crate) rules: Arc<RuleSet>,
    /// `auth.issuer`: the exact discovery issuer to expect when it is not the authority.
    pub(crate) issuer: Option<String>,
    /// Azure AD B2C policies (user flows); all `None` outside B2C.
    pub(crate) b2c: B2cPolicies,
    /// `auth.client_auth_method`: checked against the credential at build time.
    pub(crate) client_auth_method: ClientAuthMethod,
    /// Seal the tokens kept in the session.
    pub(crate) token_keys: TokenKeys,
    /// After this long the next request re-checks the roles with the provider.
    pub(crate) roles_max_age: Duration,
    /// How long roles are kept while the provider cannot be reached for a re-check.
    pub(crate) roles_grace: Duration,
    /// Downstream APIs by name (`downstream_apis.<name>`).
    pub(crate) downstream_apis: HashMap<String, DownstreamApi>,
}

/// A downstream API the app calls on the user's behalf, in Microsoft.Identity.Web's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamApi {
    /// Every call goes to `base_url` + the handler's path.
    pub base_url: Url,
    /// The delegated scopes its access token needs, e.g. `User.Read`.
    pub scopes: Vec<String>,
}

/// The B2C policies in use: sign-in (configured, or the authority's policy segment), profile
/// edit and password reset. Each is started as its own authorization request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct B2cPolicies {
    /// The sign-up/sign-in policy, the one in the authority's path.
    pub sign_up_sign_in: Option<String>,
    /// Started by `/profile/edit`.
    pub edit_profile: Option<String>,
    /// Started when the callback says `AADB2C90118` (forgotten password).
    pub reset_password: Option<String>,
}

impl B2cPolicies {
    /// Every configured policy: a token issued by any of them is accepted.
    pub(crate) fn all(&self) -> Vec<String> {
        [
            &self.sign_up_sign_in,
            &self.edit_profile,
            &self.reset_password,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

impl AuthConfig {
    /// Starts a configuration with every optional value at its default.
    ///
    /// `authority` is the OpenID issuer (discovery is read from
    /// `{authority}/.well-known/openid-configuration`); `public_url` is the origin users browse
    /// to, the only source of the redirect and post-logout URLs.
    pub fn builder(
        authority: impl Into<String>,
        client_id: impl Into<String>,
        public_url: impl Into<String>,
    ) -> AuthConfigBuilder {
        AuthConfigBuilder {
            authority: authority.into(),
            client_id: client_id.into(),
            public_url: public_url.into(),
            ..AuthConfigBuilder::default()
        }
    }

    /// The path of the sign-in page (`{base_path}/login`).
    pub fn login_path(&self) -> &str {
        &self.login_path
    }

    /// The path of the sign-out route (`{base_path}/logout`).
    pub fn logout_path(&self) -> &str {
        &self.logout_path
    }

    /// The path of the callback route (`{base_path}/getAToken` by default).
    pub fn redirect_path(&self) -> &str {
        self.redirect_url.path()
    }

    /// The path prefix under which callers get JSON and may send a Bearer token.
    pub fn api_prefix(&self) -> &str {
        &self.api_prefix
    }

    /// The configured role hierarchy, lowest first.
    pub fn roles(&self) -> &RoleHierarchy {
        &self.roles
    }

    /// Where app roles come from (the `roles` claim, or groups mapped to roles).
    pub fn role_source(&self) -> &RoleSource {
        &self.role_source
    }

    /// The checked route rule table.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The client id (the expected `aud` of ID tokens).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The configured issuer.
    pub fn authority(&self) -> &Url {
        &self.authority
    }

    /// The `aud` values a Bearer access token may carry.
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The scopes of which a delegated Bearer token must hold one.
    pub fn api_scopes(&self) -> &[String] {
        &self.api_scopes
    }

    /// Which tenants may sign in, in words (for check-config and logs).
    pub fn describe_tenants(&self) -> String {
        self.allowed_tenants.describe()
    }

    /// Whether `allowed_tenants` is `["*"]`: every Entra tenant may sign in.
    pub fn allows_every_tenant(&self) -> bool {
        self.allowed_tenants == TenantPolicy::Any
    }

    /// The client certificate, when the token calls use `private_key_jwt` instead of a secret.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        match &self.credential {
            ClientCredential::Certificate(c) => Some(c),
            ClientCredential::Secret(_) => None,
        }
    }

    /// The route that starts the B2C edit-profile policy (`{base_path}/profile/edit`); mounted
    /// only when that policy is configured.
    pub fn profile_edit_path(&self) -> String {
        format!("{}/profile/edit", self.base())
    }

    /// `{base_path}/backchannel-logout`: where a provider POSTs logout tokens.
    pub fn backchannel_logout_path(&self) -> &str {
        &self.backchannel_logout_path
    }

    /// `{base_path}/frontchannel-logout`: the front-channel logout URL to register in Entra.
    pub fn frontchannel_logout_path(&self) -> &str {
        &self.frontchannel_logout_path
    }

    fn base(&self) -> &str {
        self.login_path.trim_end_matches("/login")
    }

    /// `auth.issuer`, when set: the exact issuer discovery and tokens must name.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The B2C policies in use (all `None` outside B2C).
    pub fn b2c(&self) -> &B2cPolicies {
        &self.b2c
    }

    /// What issuer tokens must carry, in a sentence (for `check-config`).
    pub fn describe_issuer(&self) -> String {
        match &self.issuer {
            Some(i) => format!("{i} (auth.issuer; discovery must name exactly this)"),
            None => format!(
                "the discovery issuer, which must be {} (or its {{tenantid}} template, or the \
                 External ID / B2C issuer of that tenant); otherwise set auth.issuer",
                self.authority
            ),
        }
    }
}

/// One thing wrong with a configuration: the field (named as in settings, e.g. `client_id`,
/// `roles`, `rules[2]`) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The builder field or settings leaf the problem is about.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Every problem found by [`AuthConfigBuilder::build`], so they can all be fixed at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in field order.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid auth configuration:")?;
        for p in &self.problems {
            write!(f, "\n  - {}: {}", p.field, p.message)?;
        }
        Ok(())
    }
}

/// Builds an [`AuthConfig`]; every setter has a default, `build` checks them all together.
#[derive(Debug, Clone)]
pub struct AuthConfigBuilder {
    authority: String,
    client_id: String,
    public_url: String,
    client_secret: String,
    client_certificate: Option<ClientCertificate>,
    client_auth_method: ClientAuthMethod,
    base_path: String,
    redirect_path: String,
    scopes: Vec<String>,
    prompt: Option<String>,
    allowed_tenants: Vec<String>,
    api_audiences: Vec<String>,
    api_audience: Option<String>,
    api_scopes: Vec<String>,
    api_prefix: String,
    jwks_refresh_cooldown: Duration,
    discovery_retry: Duration,
    http_timeout: Duration,
    clock_leeway_secs: u64,
    pending_ttl: Duration,
    idle_timeout: Duration,
    absolute_timeout: Duration,
    roles: Vec<String>,
    group_roles: Option<Vec<(String, String)>>,
    rules: Vec<RuleSpec>,
    default_access: String,
    code_roles: Vec<&'static str>,
    issuer: Option<String>,
    b2c: B2cPolicies,
    role_claim: Option<String>,
    token_keys: Option<TokenKeys>,
    roles_max_age: Duration,
    roles_grace: Duration,
    downstream_apis: Vec<(String, String, Vec<String>)>,
}

/// Lowest JWKS cool-down and discovery retry for a provider that is not on loopback.
const MIN_PROVIDER_INTERVAL_SECS: u64 = 5;
/// Highest JWKS cool-down and discovery retry: longer would leave a key rollover or a
/// recovered provider unnoticed for too long.
const MAX_PROVIDER_INTERVAL_SECS: u64 = 3600;
/// Longest idle or absolute session lifetime: a stolen cookie must not live for months.
const MAX_SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// The scope a delegated access token must carry by default (Entra's "Expose an API" example).
pub const DEFAULT_API_SCOPE: &str = "access_as_user";

/// The role values of the DemoApp registration, lowest first: the default hierarchy.
pub const DEFAULT_ROLES: [&str; 3] = ["DemoApp.Read", "DemoApp.Write", "DemoApp.Admin"];

impl Default for AuthConfigBuilder {
    fn default() -> Self {
        AuthConfigBuilder {
            authority: String::new(),
            client_id: String::new(),
            public_url: String::new(),
            client_secret: String::new(),
            client_certificate: None,
            client_auth_method: ClientAuthMethod::Auto,
            base_path: String::new(),
            redirect_path: "/getAToken".into(),
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(String::from)
                .to_vec(),
            prompt: None,
            allowed_tenants: Vec::new(),
            api_audiences: Vec::new(),
            api_audience: None,
            api_scopes: vec![DEFAULT_API_SCOPE.to_owned()],
            api_prefix: crate::reject::DEFAULT_API_PREFIX.into(),
            jwks_refresh_cooldown: Duration::from_secs(30),
            discovery_retry: Duration::from_secs(5),
            http_timeout: Duration::from_secs(10),
            clock_leeway_secs: 60,
            pending_ttl: Duration::from_secs(10 * 60),
            idle_timeout: Duration::from_secs(8 * 3600),
            absolute_timeout: Duration::from_secs(24 * 3600),
            roles: DEFAULT_ROLES.map(String::from).to_vec(),
            group_roles: None,
            role_claim: None,
            rules: Vec::new(),
            default_access: "anonymous".into(),
            code_roles: Vec::new(),
            issuer: None,
            b2c: B2cPolicies::default(),
            token_keys: None,
            roles_max_age: Duration::from_secs(60 * 60),
            roles_grace: Duration::from_secs(15 * 60),
            downstream_apis: Vec::new(),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl AuthConfigBuilder {
    /// The client secret (confidential client); this or a client certificate is required.
    /// Blank counts as unset.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = secret.into();
        self
    }

    /// A client certificate instead of a secret: every token call then sends a fresh
    /// `private_key_jwt` assertion signed with its key. Exclusive with a secret; must not be
    /// expired when [`build_at`](Self::build_at) runs.
    pub fn client_certificate(mut self, certificate: Option<ClientCertificate>) -> Self {
        self.client_certificate = certificate;
        self
    }

    /// How the token call authenticates (default [`ClientAuthMethod::Auto`]); an explicit
    /// method the credential cannot do is a build problem on `client_auth_method`.
    pub fn client_auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.client_auth_method = method;
        self
    }

    /// Mounts every auth route under this prefix (`/auth` gives `/auth/login`); default none.
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        self.base_path = path.into();
        self
    }

    /// The callback path below the base path; default `/getAToken`.
    pub fn redirect_path(mut self, path: impl Into<String>) -> Self {
        self.redirect_path = path.into();
        self
    }

    /// Scopes to request; must include `openid`. Default `openid profile email offline_access`
    /// (`offline_access` asks for the refresh token that live roles and downstream tokens use).
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The `prompt` parameter (`none`, `login`, `consent`, `select_account`); default none.
    pub fn prompt(mut self, prompt: Option<String>) -> Self {
        self.prompt = prompt;
        self
    }

    /// Tenant ids (GUIDs, any case) whose tokens are accepted, or `["*"]` for every tenant.
    /// Empty (the default) is only valid for a single-tenant authority: a multi-tenant one
    /// (`/organizations`, `/common`, a `{tenantid}` issuer) needs a list or `*`.
    pub fn allowed_tenants<S: Into<String>>(mut self, t: impl IntoIterator<Item = S>) -> Self {
        self.allowed_tenants = t.into_iter().map(Into::into).collect();
        self
    }

    /// Accepted `aud` values of Bearer access tokens; empty (the default) means the client id
    /// (Entra v2 tokens) and `api://{client_id}` (the Application ID URI, v1 tokens).
    pub fn api_audiences<S: Into<String>>(mut self, a: impl IntoIterator<Item = S>) -> Self {
        self.api_audiences = a.into_iter().map(Into::into).collect();
        self
    }

    /// Deprecated single audience, added to [`api_audiences`](Self::api_audiences) (or to its
    /// defaults when that is empty).
    #[deprecated(note = "use api_audiences")]
    pub fn api_audience(mut self, audience: Option<String>) -> Self {
        self.api_audience = audience;
        self
    }

    /// Scopes the API exposes; a delegated token's `scp` must hold one. Default
    /// `access_as_user`.
    pub fn api_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.api_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Path prefix where Bearer tokens are accepted and callers get JSON; default `/api/`.
    pub fn api_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.api_prefix = prefix.into();
        self
    }

    setter!(
        /// Minimum time between two key-set refetches for an unknown `kid` (5 s to 1 hour; less
        /// only for a loopback authority); default 30 s.
        jwks_refresh_cooldown: Duration
    );
    setter!(
        /// Minimum time between two discovery attempts while the provider is down (5 s to 1 hour;
        /// less only for a loopback authority); default 5 s.
        discovery_retry: Duration
    );
    setter!(
        /// Connect and total timeout of every provider call (1 to 30 s); default 10 s.
        http_timeout: Duration
    );
    setter!(
        /// Clock skew accepted on `exp`, `nbf` and `iat` (at most 300 s); default 60 s.
        clock_leeway_secs: u64
    );
    setter!(
        /// How long a started sign-in can be completed; default 10 minutes.
        pending_ttl: Duration
    );
    setter!(
        /// A session ends after this long without a request (at most 30 days); default 8 hours.
        idle_timeout: Duration
    );
    setter!(
        /// A session ends this long after sign-in whatever the activity (at most 30 days); default
        /// 24 hours.
        absolute_timeout: Duration
    );

    setter!(
        /// After this long the next request refreshes the tokens and re-reads the roles from the
        /// new ID token (0 = every request); default 60 minutes.
        roles_max_age: Duration
    );
    setter!(
        /// How long a session keeps its roles while the provider cannot be reached for the
        /// re-check, then the user must sign in again; default 15 minutes.
        roles_grace: Duration
    );

    /// The keys that seal the tokens kept in the session (see [`TokenKeys`]); default a random
    /// key for this process, so tokens do not survive a restart.
    pub fn token_keys(mut self, keys: TokenKeys) -> Self {
        self.token_keys = Some(keys);
        self
    }

    /// Adds a downstream API: [`crate::Auth::downstream`] calls `base_url` + path with an access
    /// token for `scopes`.
    pub fn downstream_api<S: Into<String>>(
        mut self,
        name: impl Into<String>,
        base_url: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        self.downstream_apis.push((
            name.into(),
            base_url.into(),
            scopes.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// The ordered app role values, lowest first; each level implies the ones below it.
    /// Default `DemoApp.Read < DemoApp.Write < DemoApp.Admin`.
    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Read app roles from the `groups` claim instead of `roles`: group object id → role value.
    pub fn group_roles<K: Into<String>, V: Into<String>>(
        mut self,
        map: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.group_roles = Some(map.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    /// The claim app roles are read from: a name or dotted path (`realm_access.roles`,
    /// `resource_access.{client_id}.roles`, `{client_id}` filled in). Default `roles`, or
    /// `groups` when [`Self::group_roles`] is set (whose map then applies to this claim).
    pub fn role_claim(mut self, claim: impl Into<String>) -> Self {
        self.role_claim = Some(claim.into());
        self
    }

    /// Route rules enforced by [`crate::RouteRules`]; default none.
    pub fn rules(mut self, rules: Vec<RuleSpec>) -> Self {
        self.rules = rules;
        self
    }

    /// What paths no rule names need: `anonymous` (default: code guards decide), `signed_in`
    /// or `deny`.
    pub fn default_access(mut self, access: impl Into<String>) -> Self {
        self.default_access = access.into();
        self
    }

    /// Role values your code guards name (`RequireRole<R>` markers, `has_role` calls), so a
    /// typo in the hierarchy fails `build` instead of the first request.
    pub fn code_roles(mut self, names: impl IntoIterator<Item = &'static str>) -> Self {
        self.code_roles.extend(names);
        self
    }

    /// The issuer to expect when the discovery document's is not the authority (Entra
    /// External ID, B2C, or a provider whose issuer differs): tokens must carry exactly this
    /// `iss`. Empty or unset: the authority (or a recognised External ID / B2C shape).
    pub fn issuer(mut self, issuer: Option<String>) -> Self {
        self.issuer = issuer.filter(|i| !i.trim().is_empty());
        self
    }

    /// Azure AD B2C policies: sign-up/sign-in (default: the policy in the authority's path),
    /// profile edit (`/profile/edit`) and password reset (started on `AADB2C90118`).
    pub fn b2c_policies(mut self, policies: B2cPolicies) -> Self {
        self.b2c = policies;
        self
    }

    /// Checks everything and returns the configuration, or every problem at once.
    pub fn build(self) -> Result<AuthConfig, ConfigError> {
        self.build_at(SystemTime::now())
    }

    /// [`build`](Self::build) with the clock given: the client certificate must not be
    /// expired at `now` (tests pass a fixed time).
    pub fn build_at(self, now: SystemTime) -> Result<AuthConfig, ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(ConfigProblem {
                field: field.to_owned(),
                message,
            })
        };

        let authority = parse_url(
            "authority",
            &self.authority,
            &mut problem,
            "is missing; set it to your OpenID issuer, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0",
        );
        if let Some(a) = &authority
            && (a.query().is_some() || a.fragment().is_some())
        {
            problem(
                "authority",
                format!("{a} must not have a query or fragment"),
            );
        }
        let public = parse_url(
            "public_url",
            &self.public_url,
            &mut problem,
            "is missing; set it to the address users browse to, e.g. https://app.example.com (it is the only source of redirect URLs)",
        );
        if let Some(p) = &public
            && (p.path() != "/" || p.query().is_some() || p.fragment().is_some())
        {
            problem(
                "public_url",
                format!(
                    "{p} must be a bare origin such as https://app.example.com (no path, query or fragment)"
                ),
            );
        }
        let client_id = self.client_id.trim().to_owned();
        if client_id.is_empty() {
            problem(
                "client_id",
                "is missing; use the Application (client) ID of your app registration".into(),
            );
        }
        let secret = self.client_secret.trim();
        let credential = match (secret.is_empty(), &self.client_certificate) {
            (true, None) => {
                problem(
                    "client_secret",
                    "is missing; under Certificates & secrets either upload a certificate and set client_certificate.certificate_file + client_certificate.private_key_file (recommended), or create a client secret and set it (never in appsettings.json)".into(),
                );
                None
            }
            (false, Some(_)) => {
                problem(
                    "client_secret",
                    "is set together with client_certificate.certificate_file / private_key_file; use one credential: unset the secret (an empty value counts as unset) to use the certificate, or remove the certificate files to keep the secret".into(),
                );
                None
            }
            (false, None) => Some(ClientCredential::Secret(self.client_secret.clone())),
            (true, Some(cert)) => {
                if cert.is_expired_at(now) {
                    problem(
                        CERTIFICATE_FILE_FIELD,
                        format!(
                            "the certificate {} (x5t#S256 {}) expired on {}; create a new one, upload it to the app registration (Certificates & secrets) and point this setting and private_key_file at it",
                            cert.subject(),
                            cert.thumbprint(),
                            cert.not_after_text()
                        ),
                    );
                }
                Some(ClientCredential::Certificate(cert.clone()))
            }
        };

        let base_path = self.base_path.trim().trim_end_matches('/').to_owned();
        if !base_path.is_empty() && !is_plain_path(&base_path) {
            problem(
                "base_path",
                format!(
                    "{base_path:?} must be empty or a path such as /auth (no query, spaces or backslashes)"
                ),
            );
        }
        let rp = self.redirect_path.trim();
        if rp == "/" || !is_plain_path(rp) {
            problem(
                "redirect_path",
                format!("{rp:?} must be a path starting with / and not / itself, e.g. /getAToken"),
            );
        } else if ["/login", "/logout"].contains(&rp) {
            problem(
                "redirect_path",
                format!("{rp:?} clashes with the sign-in or sign-out route"),
            );
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            problem("scopes", "must include \"openid\"".into());
        }
        if let Some(p) = &self.prompt
            && !["none", "login", "consent", "select_account"].contains(&p.as_str())
        {
            problem(
                "prompt",
                format!("{p:?} must be one of none, login, consent, select_account"),
            );
        }
        if !(1..=30).contains(&self.http_timeout.as_secs()) {
            problem(
                "http_timeout_secs",
                "must be between 1 and 30 seconds".into(),
            );
        }
        // The floors stop forged `kid`s and an outage from hammering a real provider. A
        // loopback issuer (the discovery issuer must equal it) is a local test or dev provider.
        let local = authority.as_ref().is_some_and(is_loopback_host);
        for (field, value) in [
            ("jwks_refresh_cooldown_secs", self.jwks_refresh_cooldown),
            ("discovery_retry_secs", self.discovery_retry),
        ] {
            let floor = if local { 0 } else { MIN_PROVIDER_INTERVAL_SECS };
            if !(floor..=MAX_PROVIDER_INTERVAL_SECS).contains(&value.as_secs()) {
                problem(
                    field,
                    format!(
                        "must be between {MIN_PROVIDER_INTERVAL_SECS} and {MAX_PROVIDER_INTERVAL_SECS} seconds (below {MIN_PROVIDER_INTERVAL_SECS} only for a loopback authority)"
                    ),
                );
            }
        }
        for (field, value) in [
            ("idle_timeout", self.idle_timeout),
            ("absolute_timeout", self.absolute_timeout),
        ] {
            if value > MAX_SESSION_TIMEOUT {
                problem(
                    field,
                    format!(
                        "must be at most 30 days ({} minutes)",
                        MAX_SESSION_TIMEOUT.as_secs() / 60
                    ),
                );
            }
        }
        if self.clock_leeway_secs > 300 {
            problem("clock_leeway_secs", "must be at most 300 seconds".into());
        }
        if self.idle_timeout.is_zero() || self.absolute_timeout.is_zero() {
            problem(
                "idle_timeout",
                "session timeouts must be greater than 0".into(),
            );
        } else if self.idle_timeout > self.absolute_timeout {
            problem(
                "idle_timeout",
                "must not exceed the absolute timeout".into(),
            );
        }
        if !self.api_prefix.starts_with('/') || !self.api_prefix.ends_with('/') {
            problem(
                "api_prefix",
                format!(
                    "{:?} must start and end with /, e.g. /api/",
                    self.api_prefix
                ),
            );
        }

        let api_audiences = api_audiences(&client_id, &self.api_audiences, &self.api_audience);
        if api_audiences.iter().any(|a| a.is_empty()) {
            problem(
                "api_audiences",
                "must not hold empty values; list the client id and/or api://<client-id>".into(),
            );
        }
        let api_scopes: Vec<String> = self
            .api_scopes
            .iter()
            .map(|s| s.trim().to_owned())
            .collect();
        if api_scopes.is_empty() {
            problem(
                "api_scopes",
                format!(
                    "must name at least one scope your API exposes, e.g. {DEFAULT_API_SCOPE:?}"
                ),
            );
        }
        for s in &api_scopes {
            if s.is_empty() || s.contains(char::is_whitespace) {
                problem(
                    "api_scopes",
                    format!(
                        "{s:?} must be one scope name without spaces, e.g. {DEFAULT_API_SCOPE:?} (not api://.../{DEFAULT_API_SCOPE})"
                    ),
                );
            }
        }

        let allowed_tenants = TenantPolicy::parse(&self.allowed_tenants).unwrap_or_else(|errors| {
            for e in errors {
                problem("allowed_tenants", e);
            }
            TenantPolicy::Unset
        });
        if let Some(a) = &authority
            && tenant::is_multi_tenant_authority(a)
            && allowed_tenants == TenantPolicy::Unset
            && !self.allowed_tenants.iter().any(|t| !t.trim().is_empty())
        {
            problem(
                "allowed_tenants",
                format!(
                    "is empty, and the authority {a} is multi-tenant: every Entra tenant could sign in, and a foreign tenant's admin can give themselves any app role. List the tenant ids (GUIDs) allowed to sign in, e.g. [\"<your tenant id>\"], or [\"*\"] to let every tenant in on purpose"
                ),
            );
        }

        let roles = RoleHierarchy::new(self.roles.clone()).unwrap_or_else(|errors| {
            for e in errors {
                problem("roles", e);
            }
            RoleHierarchy::fallback()
        });
        for name in &self.code_roles {
            if !roles.contains(name) {
                problem(
                    "roles",
                    format!(
                        "the code guards routes with {name:?}, which is not in the hierarchy ({}); add it or fix the name",
                        roles.describe()
                    ),
                );
            }
        }
        let role_source = match &self.group_roles {
            None => RoleSource::default(),
            Some(map) => RoleSource::groups(map, &roles).unwrap_or_else(|errors| {
                for e in errors {
                    problem("group_roles", e);
                }
                RoleSource::default()
            }),
        };
        let role_source = match self.role_claim.as_deref() {
            None => role_source,
            Some(text) => match RoleClaim::parse(text, &client_id) {
                Ok(claim) => role_source.with_claim(claim),
                Err(message) => {
                    problem("role_claim", message);
                    role_source
                }
            },
        };
        let default = crate::rules::parse_default(&self.default_access).unwrap_or_else(|| {
            problem(
                "default",
                format!(
                    "{:?} must be signed_in, anonymous or deny",
                    self.default_access
                ),
            );
            Access::Deny
        });
        let rules = RuleSet::new(&self.rules, default.clone(), |r| roles.contains(r))
            .unwrap_or_else(|errors| {
                for e in errors {
                    let field = match e.index {
                        Some(i) => format!("rules[{i}]"),
                        None => "rules".to_owned(),
                    };
                    problem(&field, e.message);
                }
                RuleSet::allow_default(Access::Deny)
            });

        // http only beside a loopback http authority (the dev IdP's `{tid}.localhost` issuer).
        let local = authority
            .as_ref()
            .is_some_and(|a| a.scheme() == "http" && is_loopback_host(a));
        let issuer = self.issuer.as_deref().and_then(|text| {
            let text = text.trim();
            match Url::parse(text) {
                Ok(u) if u.host().is_some() && (u.scheme() == "https" || local && u.scheme() == "http") => {
                    Some(text.to_owned())
                }
                _ => {
                    problem(
                        "issuer",
                        format!("{text:?} must be an absolute https URL (the issuer your provider's discovery document names)"),
                    );
                    None
                }
            }
        });
        let b2c = b2c_policies(&self.b2c, authority.as_ref(), &mut problem);
        if let Some(why) = credential
            .as_ref()
            .and_then(|c| self.client_auth_method.misfit(c))
        {
            problem("client_auth_method", why);
        }

        let mut downstream_apis = HashMap::new();
        for (name, base, scopes) in &self.downstream_apis {
            let field = format!("downstream_apis.{name}");
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_name {
                problem(&field, "the name must be letters, digits, - or _".into());
                continue;
            }
            let url = match Url::parse(base.trim()) {
                Ok(u)
                    if u.host().is_some()
                        && is_secure_or_loopback(&u)
                        && u.query().is_none()
                        && u.fragment().is_none() =>
                {
                    u
                }
                _ => {
                    problem(
                        &format!("{field}.base_url"),
                        format!(
                            "{base:?} must be an https URL such as https://graph.microsoft.com/v1.0 (plain http only on localhost), with no query"
                        ),
                    );
                    continue;
                }
            };
            let scopes: Vec<String> = scopes.iter().map(|s| s.trim().to_owned()).collect();
            if scopes.is_empty()
                || scopes
                    .iter()
                    .any(|s| s.is_empty() || s.contains(char::is_whitespace))
            {
                problem(
                    &format!("{field}.scopes"),
                    "must list the scopes the API needs, one per entry, e.g. [\"User.Read\"]"
                        .into(),
                );
                continue;
            }
            downstream_apis.insert(
                name.clone(),
                DownstreamApi {
                    base_url: url,
                    scopes,
                },
            );
        }
        if self.roles_max_age > MAX_SESSION_TIMEOUT {
            problem("roles_max_age_minutes", "must be at most 30 days".into());
        }
        if self.roles_grace > MAX_SESSION_TIMEOUT {
            problem("roles_grace_minutes", "must be at most 30 days".into());
        }

        let (Some(authority), Some(public)) = (authority, public) else {
            return Err(ConfigError { problems });
        };
        let join = |path: &str| public.join(&format!("{base_path}{path}"));
        let (Ok(redirect_url), Ok(post_logout_redirect_url)) = (join(rp), join("/login")) else {
            problems.push(ConfigProblem {
                field: "base_path".into(),
                message: "does not form a valid URL with public_url".into(),
            });
            return Err(ConfigError { problems });
        };
        let Some(credential) = credential.filter(|_| problems.is_empty()) else {
            return Err(ConfigError { problems });
        };
        Ok(AuthConfig {
            token_keys: self.token_keys.clone().unwrap_or_else(TokenKeys::ephemeral),
            roles_max_age: self.roles_max_age,
            roles_grace: self.roles_grace,
            downstream_apis,
            api_audiences,
            api_scopes,
            login_path: format!("{base_path}/login"),
            logout_path: format!("{base_path}/logout"),
            backchannel_logout_path: format!("{base_path}/backchannel-logout"),
            frontchannel_logout_path: format!("{base_path}/frontchannel-logout"),
            authority,
            client_id,
            credential,
            redirect_url,
            post_logout_redirect_url,
            scopes: self.scopes,
            prompt: self.prompt,
            allowed_tenants,
            api_prefix: self.api_prefix,
            jwks_refresh_cooldown: self.jwks_refresh_cooldown,
            discovery_retry: self.discovery_retry,
            http_timeout: self.http_timeout,
            clock_leeway_secs: self.clock_leeway_secs,
            pending_ttl: self.pending_ttl,
            idle_timeout: self.idle_timeout,
            absolute_timeout: self.absolute_timeout,
            roles,
            role_source,
            rules: Arc::new(rules),
            issuer,
            b2c,
            client_auth_method: self.client_auth_method,
        })
    }
}

/// The B2C policies, checked: single names, and a sign-in policy (configured or the
/// authority's) whenever profile edit or password reset is set, since their requests are the
/// sign-in request with that policy swapped in.
fn b2c_policies(
    given: &B2cPolicies,
    authority: Option<&Url>,
    problem: &mut impl FnMut(&str, String),
) -> B2cPolicies {
    let mut clean = |field: &str, value: &Option<String>| -> Option<String> {
        let v = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        if v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            Some(v.to_owned())
        } else {
            problem(
                field,
                format!("{v:?} must be a policy (user flow) name such as B2C_1_signupsignin"),
            );
            None
        }
    };
    let mut out = B2cPolicies {
        sign_up_sign_in: clean("b2c.sign_up_sign_in_policy", &given.sign_up_sign_in),
        edit_profile: clean("b2c.edit_profile_policy", &given.edit_profile),
        reset_password: clean("b2c.reset_password_policy", &given.reset_password),
    };
    let in_authority = authority
        .and_then(crate::issuer::b2c_authority)
        .map(|(_, p)| p.to_owned());
    match (&out.sign_up_sign_in, &in_authority) {
        (Some(p), Some(a)) if !p.eq_ignore_ascii_case(a) => problem(
            "b2c.sign_up_sign_in_policy",
            format!("{p:?} differs from the policy in auth.authority ({a:?}); make them the same"),
        ),
        (Some(p), None) if authority.is_some() => problem(
            "b2c.sign_up_sign_in_policy",
            format!(
                "{p:?} is set but auth.authority is not a B2C policy authority; set it to \
                 https://<name>.b2clogin.com/<name>.onmicrosoft.com/{p}/v2.0"
            ),
        ),
        (None, Some(a)) => out.sign_up_sign_in = Some(a.clone()),
        (None, None) if out.edit_profile.is_some() || out.reset_password.is_some() => problem(
            "b2c.sign_up_sign_in_policy",
            "is needed for the profile-edit and password-reset policies: set auth.authority to \
             https://<name>.b2clogin.com/<name>.onmicrosoft.com/<sign-in policy>/v2.0"
                .into(),
        ),
        _ => {}
    }
    out
}

/// The accepted audiences: the configured list (or the client id and `api://{client_id}`),
/// plus the deprecated single value; trimmed, without duplicates.
fn api_audiences(client_id: &str, list: &[String], single: &Option<String>) -> Vec<String> {
    let mut all: Vec<String> = if list.is_empty() {
        vec![client_id.to_owned(), format!("api://{client_id}")]
    } else {
        list.iter().map(|a| a.trim().to_owned()).collect()
    };
    if let Some(one) = single.as_deref().map(str::trim).filter(|a| !a.is_empty())
        && !all.iter().any(|a| a == one)
    {
        all.push(one.to_owned());
    }
    all
}

fn parse_url(
    field: &str,
    text: &str,
    problem: &mut impl FnMut(&str, String),
    missing: &str,
) -> Option<Url> {
    let text = text.trim();
    if text.is_empty() {
        problem(field, missing.to_owned());
        return None;
    }
    match Url::parse(text) {
        Ok(url) if url.host().is_some() && is_secure_or_loopback(&url) => Some(url),
        Ok(url) if url.host().is_some() && url.scheme() == "http" => {
            problem(
                field,
                format!(
                    "{text} must use https (plain http is only allowed on localhost/127.0.0.1)"
                ),
            );
            None
        }
        _ => {
            problem(field, format!("{text:?} is not an absolute http(s) URL"));
            None
        }
    }
}

/// A path that starts with one `/` and holds no query, fragment, space or backslash.
fn is_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains(['?', '#', ' ', '\\'])
        && !path.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> AuthConfigBuilder {
        AuthConfig::builder(
            "https://idp.example/t/v2.0",
            "client",
            "https://app.example",
        )
        .client_secret("s")
    }

    #[test]
    fn defaults_build() {
        let c = base().build().expect("defaults are valid");
        assert_eq!(c.login_path(), "/login");
        assert_eq!(c.redirect_url.as_str(), "https://app.example/getAToken");
        assert_eq!(c.api_audiences(), ["client", "api://client"]);
        assert_eq!(c.api_scopes(), ["access_as_user"]);
        assert_eq!(c.roles().names().len(), 3);
    }

    #[test]
    fn base_path_prefixes_every_route() {
        let c = base().base_path("/auth/").build().unwrap();
        assert_eq!(c.login_path(), "/auth/login");
        assert_eq!(c.logout_path(), "/auth/logout");
        assert_eq!(c.redirect_path(), "/auth/getAToken");
        assert_eq!(c.backchannel_logout_path(), "/auth/backchannel-logout");
        assert_eq!(c.frontchannel_logout_path(), "/auth/frontchannel-logout");
        assert_eq!(
            c.post_logout_redirect_url.as_str(),
            "https://app.example/auth/login"
        );
    }

    #[test]
    fn every_problem_at_once() {
        let err = AuthConfig::builder("", "", "http://app.example")
            .roles(["A", "a"])
            .default_access("nobody")
            .code_roles(["Missing.Role"])
            .build()
            .unwrap_err();
        let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
        for f in [
            "authority",
            "public_url",
            "client_id",
            "client_secret",
            "roles",
            "default",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        assert!(err.to_string().contains("Missing.Role"));
    }
    fn fields(b: AuthConfigBuilder) -> Vec<String> {
        match b.build() {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| p.field).collect(),
        }
    }

    #[test]
    fn http_timeout_is_one_to_thirty_seconds() {
        for (secs, ok) in [(0, false), (1, true), (30, true), (31, false)] {
            let f = fields(base().http_timeout(Duration::from_secs(secs)));
            assert_eq!(f.is_empty(), ok, "{secs} s: {f:?}");
        }
    }

    #[test]
    fn provider_intervals_have_a_floor_for_a_remote_authority() {
        for set in [
            |b: AuthConfigBuilder, d| b.jwks_refresh_cooldown(d),
            |b: AuthConfigBuilder, d| b.discovery_retry(d),
        ] {
            for (secs, ok) in [
                (0, false),
                (4, false),
                (5, true),
                (3600, true),
                (3601, false),
            ] {
                let f = fields(set(base(), Duration::from_secs(secs)));
                assert_eq!(f.is_empty(), ok, "{secs} s: {f:?}");
            }
            // A loopback issuer is a local provider: tests and dev may retry at once.
            let local =
                AuthConfig::builder("http://127.0.0.1:9400", "client", "https://app.example")
                    .client_secret("s");
            assert!(fields(set(local, Duration::ZERO)).is_empty());
        }
        let err = base().discovery_retry(Duration::ZERO).build().unwrap_err();
        assert_eq!(err.problems[0].field, "discovery_retry_secs");
        assert!(err.problems[0].message.contains("between 5 and 3600"));
    }

    #[test]
    fn session_timeouts_are_at_most_thirty_days() {
        let month = Duration::from_secs(30 * 24 * 3600);
        let over = month + Duration::from_secs(60);
        assert!(fields(base().idle_timeout(month).absolute_timeout(month)).is_empty());
        assert_eq!(fields(base().absolute_timeout(over)), ["absolute_timeout"]);
        assert_eq!(
            fields(base().idle_timeout(over).absolute_timeout(over)),
            ["idle_timeout", "absolute_timeout"]
        );
    }

    #[test]
    #[allow(deprecated)]
    fn api_audiences_and_the_deprecated_single_value() {
        let c = base()
            .api_audience(Some(" custom ".into()))
            .build()
            .unwrap();
        assert_eq!(c.api_audiences(), ["client", "api://client", "custom"]);
        let c = base()
            .api_audiences(["api://client"])
            .api_audience(Some("api://client".into()))
            .build()
            .unwrap();
        assert_eq!(c.api_audiences(), ["api://client"]);
        assert_eq!(fields(base().api_audiences([" "])), ["api_audiences"]);
    }

    #[test]
    fn one_credential_exactly_and_not_expired() {
        let cert = ClientCertificate::from_pem(
            include_bytes!("../../../tests/api/fixtures/client-cert-soon.pem"),
            include_bytes!("../../../tests/api/fixtures/client-key.pem"),
        )
        .unwrap();
        let with_cert = |secret: &str| {
            base()
                .client_secret(secret)
                .client_certificate(Some(cert.clone()))
        };
        let jan_2026 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let feb_2026 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_769_904_000);
        let c = with_cert(" ")
            .build_at(jan_2026)
            .expect("a blank secret is unset");
        assert!(c.client_certificate().is_some());
        assert!(base().build().unwrap().client_certificate().is_none());
        let both = with_cert("s").build_at(jan_2026).unwrap_err();
        assert_eq!(both.problems.len(), 1);
        assert_eq!(both.problems[0].field, "client_secret");
        assert!(both.problems[0].message.contains("client_certificate"));
        let expired = with_cert("").build_at(feb_2026).unwrap_err();
        assert_eq!(expired.problems[0].field, CERTIFICATE_FILE_FIELD);
        assert!(
            expired.problems[0]
                .message
                .contains("expired on 2026-02-01")
        );
        let none = base().client_secret("").build().unwrap_err();
        assert!(
            none.problems[0]
                .message
                .contains("client_certificate.certificate_file")
        );
    }

    #[test]
    fn an_http_issuer_only_beside_a_loopback_authority() {
        let dev = "http://e7a1d3c5-2b4f-4a6e-9c8d-0f1e2d3c4b5a.localhost:9400/x/v2.0";
        assert_eq!(fields(base().issuer(Some(dev.into()))), ["issuer"]);
        let local = AuthConfig::builder("http://localhost:9400/x/v2.0", "c", "https://app.example")
            .client_secret("s")
            .issuer(Some(dev.into()));
        assert!(fields(local).is_empty());
        assert!(fields(base().issuer(Some("https://sts.example/t".into()))).is_empty());
    }

    #[test]
    fn api_scopes_are_single_names() {
        assert!(fields(base().api_scopes(["access_as_user", "Notes.Read"])).is_empty());
        assert_eq!(
            fields(base().api_scopes(Vec::<String>::new())),
            ["api_scopes"]
        );
        assert_eq!(
            fields(base().api_scopes(["api://client/access_as_user read"])),
            ["api_scopes"]
        );
    }

    #[test]
    fn a_multi_tenant_authority_needs_allowed_tenants() {
        let home = "5b0f3a1e-7c2d-4e8f-9a6b-1d2c3e4f5a60";
        for authority in [
            "https://login.microsoftonline.com/organizations/v2.0",
            "https://login.microsoftonline.com/common/v2.0",
        ] {
            let b =
                AuthConfig::builder(authority, "client", "https://app.example").client_secret("s");
            let err = b.clone().build().unwrap_err();
            assert_eq!(err.problems.len(), 1, "{err}");
            assert_eq!(err.problems[0].field, "allowed_tenants");
            assert!(err.problems[0].message.contains("multi-tenant"), "{err}");
            let c = b
                .clone()
                .allowed_tenants([home.to_uppercase()])
                .build()
                .unwrap();
            assert_eq!(c.describe_tenants(), home);
            assert!(!c.allows_every_tenant());
            assert!(
                b.allowed_tenants(["*"])
                    .build()
                    .unwrap()
                    .allows_every_tenant()
            );
        }
        // A single-tenant authority needs none; junk is refused wherever it is set.
        assert!(fields(base()).is_empty());
        assert_eq!(
            fields(base().allowed_tenants(["contoso.onmicrosoft.com"])),
            ["allowed_tenants"]
        );
    }
}
