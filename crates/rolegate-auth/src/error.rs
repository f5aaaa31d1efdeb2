//! Everything that can go wrong in sign-in, one variant per failed check.
//!
//! Each error knows its HTTP status, a stable `reason` code (for logs, audit rows and tests),
//! and what the user can do about it. Pages are rendered by the host through [`crate::AuthPages`].

use actix_web::http::StatusCode;

/// Why an ID token or access token was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each variant's message is its documentation
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm {0} is not allowed")]
    DisallowedAlgorithm(String),
    #[error("the token's key id is not in the provider's key set")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf in the future)")]
    NotYetValid,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the token lacks the required claim `{0}`")]
    MissingClaim(String),
    #[error("the token's claims are malformed: {0}")]
    InvalidClaims(String),
    #[error("the token's issuer is not the configured authority")]
    WrongIssuer,
    /// The token's `tid` (a GUID, lower case; `None` when absent or not a GUID) is not in
    /// `allowed_tenants`.
    #[error("the token's tenant {} is not allowed (allowed_tenants)", .0.as_deref().unwrap_or("(none)"))]
    TenantNotAllowed(Option<String>),
    #[error("the token's audience is not this application")]
    WrongAudience,
    #[error("the token names an audience this application does not trust")]
    UntrustedAudience,
    #[error("the token's authorized party (azp) is not this application")]
    WrongAuthorizedParty,
    #[error("the token's nonce does not match this sign-in")]
    NonceMismatch,
    /// External ID / B2C: the token's `tid` is not the tenant its issuer names.
    #[error("the token's tenant (tid) is not the tenant of its issuer")]
    IssuerTenantMismatch,
    /// B2C: the token's `tfp`/`acr` names a policy this application does not use.
    #[error("the token was issued by the B2C policy {0}, which is not configured")]
    PolicyNotAllowed(String),
    #[error("the provider's signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
    /// An ID token sent where an access token belongs (it has a `nonce`, an `at_hash`, or
    /// app roles without a calling client).
    #[error("the token is an ID token, not an access token for this API")]
    IdTokenAsBearer,
    #[error("the token carries neither a delegated scope (scp) nor app roles (roles)")]
    NoScopeOrRoles,
    #[error("the token's version (ver) {0} is not 1.0 or 2.0")]
    UnsupportedVersion(String),
    /// The configured role claim (`authorization.role_claim`), or an object on its path
    /// (`at`), has a type that holds no roles. Names and types only: never the claim's value.
    #[error(
        "the role claim {claim} cannot be read: {at} is {found}, not {expected} (authorization.role_claim)"
    )]
    RoleClaimType {
        claim: String,
        at: String,
        found: &'static str,
        expected: &'static str,
    },
}

impl TokenError {
    /// Stable machine-readable code, for logs, audit rows and tests.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed_token",
            TokenError::DisallowedAlgorithm(_) => "disallowed_algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::AlgorithmMismatch => "algorithm_mismatch",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::IssuedInFuture => "token_issued_in_future",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::InvalidClaims(_) => "invalid_claims",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::TenantNotAllowed(_) => "tenant_not_allowed",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::UntrustedAudience => "untrusted_audience",
            TokenError::WrongAuthorizedParty => "wrong_azp",
            TokenError::NonceMismatch => "nonce_mismatch",
            TokenError::IssuerTenantMismatch => "issuer_tenant_mismatch",
            TokenError::PolicyNotAllowed(_) => "policy_not_allowed",
            TokenError::KeysUnavailable(_) => "keys_unavailable",
            TokenError::IdTokenAsBearer => "id_token_as_bearer",
            TokenError::NoScopeOrRoles => "no_scope_or_roles",
            TokenError::UnsupportedVersion(_) => "unsupported_token_version",
            TokenError::RoleClaimType { .. } => "role_claim_type",
        }
    }

    /// A sentence for the `error_description` of a Bearer challenge and the JSON answer: the
    /// failed check and the setting that controls it. Never the token's own text (an `alg`
    /// name, a parser message), which anyone can choose.
    pub fn bearer_description(&self) -> String {
        match self {
            TokenError::DisallowedAlgorithm(_) => {
                "the token's signing algorithm is not allowed".into()
            }
            TokenError::InvalidClaims(_) => "the token's claims are malformed".into(),
            TokenError::IssuerTenantMismatch => {
                "the token's tenant (tid) is not the tenant of its issuer (auth.issuer)".into()
            }
            TokenError::PolicyNotAllowed(_) => {
                "the token's B2C policy (tfp) is not one of auth.b2c.*_policy".into()
            }
            TokenError::KeysUnavailable(_) => {
                "the provider's signing keys could not be fetched; try again shortly".into()
            }
            TokenError::UnsupportedVersion(_) => "the token's version (ver) is not 1.0 or 2.0".into(),
            TokenError::WrongIssuer => {
                "the token's issuer is not the configured authority or its tenant (auth.authority)"
                    .into()
            }
            // Only a GUID is ever echoed (see tenant.rs), so the header stays a quoted-string.
            TokenError::TenantNotAllowed(tid) => match tid {
                Some(tid) => {
                    format!("the token's tenant (tid) {tid} is not allowed (auth.allowed_tenants)")
                }
                None => "the token's tenant (tid) is not allowed (auth.allowed_tenants)".into(),
            },
            TokenError::WrongAudience | TokenError::UntrustedAudience => {
                "the token's audience (aud) is not this API (auth.api_audiences)".into()
            }
            TokenError::IdTokenAsBearer => {
                "an ID token is not an access token; request an access token for this API's scope (auth.api_scopes)"
                    .into()
            }
            TokenError::NoScopeOrRoles => {
                "the token carries neither a delegated scope (scp, auth.api_scopes) nor app roles (roles)"
                    .into()
            }
            other => other.to_string(),
        }
    }
}

/// A failed sign-in, sign-out or provider call.
#[derive(Debug, Clone, thiserror::Error)]
#[allow(missing_docs)] // each variant's message is its documentation
pub enum AuthError {
    #[error("the identity provider returned an error: {code}")]
    ProviderError {
        code: String,
        description: Option<String>,
    },
    #[error("the callback has no state parameter")]
    StateMissing,
    #[error("the callback's state matches no sign-in started in this browser")]
    StateMismatch,
    #[error("the sign-in started more than the allowed time ago")]
    StateExpired,
    #[error("the callback is malformed: {0}")]
    BadCallback(&'static str),
    #[error("the callback's iss parameter does not name the configured issuer")]
    IssuerMismatch,
    /// The token endpoint refused the code itself (`invalid_grant` and other 4xx OAuth errors
    /// about the request): a bogus, expired or replayed code is the caller's fault, not an outage.
    #[error("the token endpoint did not accept the authorization code: {0}")]
    CodeRejected(String),
    /// The token endpoint refused this application (`invalid_client` and other errors about
    /// the registration): a deployment problem the user cannot fix by retrying.
    #[error("the token endpoint refused the application: {0}")]
    TokenRejected(String),
    #[error("the token endpoint failed: {0}")]
    TokenEndpointFailed(String),
    #[error("the token endpoint did not answer in time")]
    TokenEndpointTimeout,
    #[error("the token response has no id_token")]
    MissingIdToken,
    #[error("the ID token was rejected: {0}")]
    InvalidIdToken(#[from] TokenError),
    #[error("the user holds no app role of this application (any of: {0})")]
    NoAppRole(String),
    #[error(
        "the token's groups claim was left out (groups overage) and no Graph token is available to read the memberships"
    )]
    GroupsOverage,
    #[error("the identity provider is unreachable: {0}")]
    ProviderUnavailable(String),
    /// The provider answers, but its discovery document does not fit the settings (an issuer
    /// that is not the authority): the text names the setting to change.
    #[error("the identity provider's discovery does not match the settings: {0}")]
    ProviderMismatch(String),
    #[error("the session could not be read or written: {0}")]
    Session(String),
    /// The discovered issuer is multi-tenant (`{tenantid}`) and no tenant policy is set:
    /// every Entra tenant could sign in, so rolegate refuses the provider.
    #[error(
        "the provider's issuer {issuer} lets every Entra tenant sign in, and allowed_tenants is empty: list the tenant ids allowed to sign in, or [\"*\"] to let every tenant in on purpose"
    )]
    TenantPolicyMissing { issuer: String },
    /// The client certificate's key could not sign the token call's assertion.
    #[error("the client assertion could not be signed: {0}")]
    ClientAssertion(String),
    /// The token endpoint answered `invalid_client` / `unauthorized_client`: the client
    /// authentication method or credential does not match the registration, a settings
    /// problem (503), not a broken provider (502).
    #[error(
        "the token endpoint refused the client authentication ({code}) with method {method}; discovery lists: {offered}; check auth.client_auth_method and the credential"
    )]
    ClientAuthRejected {
        code: String,
        method: &'static str,
        offered: String,
    },
    /// The provider refused the session's refresh token (`invalid_grant`): the user was
    /// disabled, signed out elsewhere or lost consent. The session is ended.
    #[error("the identity provider no longer accepts this session's sign-in: {0}")]
    SessionRevoked(String),
    /// The roles could not be re-checked for longer than `auth.roles_grace_minutes`.
    #[error("the roles could not be re-checked with the identity provider within the grace period")]
    RoleCheckUnavailable,
    /// A silent re-check (`prompt=none`) was answered with this error (`login_required`, ...).
    #[error("the identity provider wants the user to sign in again: {0}")]
    SignInRequired(String),
    /// `POST /logout` without the session's CSRF token: a form on another site cannot sign
    /// the user out.
    #[error("the sign-out request did not carry this session's csrf_token")]
    SignOutUnconfirmed,
    /// The user declined (or could not give) consent to the scopes an incremental consent
    /// asked for; the session stays as it was.
    #[error("consent to {0} was not given")]
    ConsentDeclined(String),
    /// A consent request for these scopes came back without them moments ago: asking again
    /// would loop.
    #[error("the identity provider did not grant {0} after consent")]
    ConsentNotGranted(String),
}

impl AuthError {
    /// The HTTP status of the error page.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::ProviderError { .. }
            | AuthError::StateMissing
            | AuthError::StateMismatch
            | AuthError::StateExpired
            | AuthError::BadCallback(_)
            | AuthError::IssuerMismatch
            | AuthError::CodeRejected(_) => StatusCode::BAD_REQUEST,
            AuthError::InvalidIdToken(TokenError::KeysUnavailable(_)) => StatusCode::BAD_GATEWAY,
            AuthError::InvalidIdToken(TokenError::TenantNotAllowed(_)) => StatusCode::FORBIDDEN,
            // The token is genuine; its roles are in a shape the settings do not read.
            AuthError::InvalidIdToken(TokenError::RoleClaimType { .. }) => StatusCode::FORBIDDEN,
            AuthError::TenantPolicyMissing { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::InvalidIdToken(_) => StatusCode::BAD_REQUEST,
            AuthError::NoAppRole(_) | AuthError::GroupsOverage => StatusCode::FORBIDDEN,
            AuthError::TokenRejected(_)
            | AuthError::TokenEndpointFailed(_)
            | AuthError::MissingIdToken => StatusCode::BAD_GATEWAY,
            AuthError::TokenEndpointTimeout => StatusCode::GATEWAY_TIMEOUT,
            AuthError::ProviderUnavailable(_)
            | AuthError::ProviderMismatch(_)
            | AuthError::ClientAuthRejected { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Session(_) | AuthError::ClientAssertion(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            AuthError::SessionRevoked(_)
            | AuthError::RoleCheckUnavailable
            | AuthError::SignInRequired(_) => StatusCode::UNAUTHORIZED,
            AuthError::SignOutUnconfirmed
            | AuthError::ConsentDeclined(_)
            | AuthError::ConsentNotGranted(_) => StatusCode::FORBIDDEN,
        }
    }

    /// Whether the provider answered but does not fit the settings: no retry helps, an
    /// administrator must change a setting (readiness reports it as such).
    pub fn is_settings_mismatch(&self) -> bool {
        matches!(
            self,
            AuthError::ProviderMismatch(_) | AuthError::TenantPolicyMissing { .. }
        )
    }

    /// Stable machine-readable code, used in logs, audit rows and the page's `data-reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::ProviderError { .. } => "provider_error",
            AuthError::StateMissing => "state_missing",
            AuthError::StateMismatch => "state_mismatch",
            AuthError::StateExpired => "state_expired",
            AuthError::BadCallback(_) => "bad_callback",
            AuthError::IssuerMismatch => "issuer_mismatch",
            AuthError::CodeRejected(_) => "code_rejected",
            AuthError::TokenRejected(_) => "token_rejected",
            AuthError::TokenEndpointFailed(_) => "token_endpoint_failed",
            AuthError::TokenEndpointTimeout => "token_endpoint_timeout",
            AuthError::MissingIdToken => "missing_id_token",
            AuthError::InvalidIdToken(inner) => inner.reason(),
            AuthError::NoAppRole(_) => "no_role",
            AuthError::GroupsOverage => "groups_overage",
            AuthError::ProviderUnavailable(_) => "provider_unavailable",
            AuthError::ProviderMismatch(_) => "provider_mismatch",
            AuthError::Session(_) => "session_error",
            AuthError::TenantPolicyMissing { .. } => "tenant_policy_missing",
            AuthError::ClientAssertion(_) => "client_assertion_failed",
            AuthError::ClientAuthRejected { .. } => "client_auth_rejected",
            AuthError::SessionRevoked(_) => "session_revoked",
            AuthError::RoleCheckUnavailable => "role_check_unavailable",
            AuthError::SignInRequired(_) => "sign_in_required",
            AuthError::ConsentDeclined(_) => "consent_declined",
            AuthError::ConsentNotGranted(_) => "consent_not_granted",
            AuthError::SignOutUnconfirmed => "sign_out_unconfirmed",
        }
    }

    /// A one-line title for the error page.
    pub fn title(&self) -> &'static str {
        match self {
            AuthError::NoAppRole(_) => "You have no access to this application",
            AuthError::GroupsOverage => "You are in too many groups for this sign-in",
            AuthError::ProviderUnavailable(_) => "The identity provider is unreachable",
            AuthError::ProviderMismatch(_) => "Almost there: the sign-in settings need one change",
            AuthError::ProviderError { .. } => "The identity provider refused the sign-in",
            AuthError::StateMissing
            | AuthError::StateMismatch
            | AuthError::StateExpired
            | AuthError::BadCallback(_)
            | AuthError::IssuerMismatch => "This sign-in link is not valid any more",
            AuthError::TokenEndpointTimeout => "The identity provider did not answer in time",
            AuthError::CodeRejected(_) => "The sign-in code was not accepted",
            AuthError::TokenRejected(_)
            | AuthError::TokenEndpointFailed(_)
            | AuthError::MissingIdToken => "The identity provider gave an unusable answer",
            AuthError::InvalidIdToken(TokenError::KeysUnavailable(_)) => {
                "The identity provider's signing keys are unavailable"
            }
            AuthError::InvalidIdToken(TokenError::TenantNotAllowed(_)) => {
                "Your organisation may not sign in to this application"
            }
            AuthError::InvalidIdToken(TokenError::RoleClaimType { .. }) => {
                "Your roles could not be read from the sign-in"
            }
            AuthError::InvalidIdToken(_) => "The sign-in could not be verified",
            AuthError::Session(_) => "Your session could not be saved",
            AuthError::TenantPolicyMissing { .. } => {
                "Sign-in is not set up for this identity provider's tenants"
            }
            AuthError::ClientAssertion(_) => "This application could not prove its identity",
            AuthError::ClientAuthRejected { .. } => {
                "Sign-in is misconfigured: the identity provider refused this application's client authentication"
            }
            AuthError::SessionRevoked(_)
            | AuthError::RoleCheckUnavailable
            | AuthError::SignInRequired(_) => "Your session has ended",
            AuthError::SignOutUnconfirmed => "You are still signed in",
            AuthError::ConsentDeclined(_) | AuthError::ConsentNotGranted(_) => {
                "Permission not granted"
            }
        }
    }

    /// What the user can do next; safe to show (no secrets, no raw provider text).
    pub fn advice(&self) -> std::borrow::Cow<'static, str> {
        let text = match self {
            AuthError::InvalidIdToken(TokenError::TenantNotAllowed(tid)) => {
                let tenant = tid.as_deref().unwrap_or("(no tenant id)");
                return format!(
                    "Your account belongs to the tenant {tenant}, which is not among the tenants \
                     this application lets in (auth.allowed_tenants). Sign in with an account of \
                     an allowed organisation, or ask an administrator to add the tenant id to \
                     auth.allowed_tenants."
                )
                .into();
            }
            AuthError::InvalidIdToken(TokenError::RoleClaimType {
                claim,
                at,
                found,
                expected,
            }) => {
                return format!(
                    "Your account signed in, but the identity provider sent {at} as {found}, and \
                     this application reads app roles from the claim {claim} \
                     (authorization.role_claim), which must be {expected}. An administrator must \
                     change authorization.role_claim or the provider's claim mapping."
                )
                .into();
            }
            AuthError::TenantPolicyMissing { .. } => {
                "This application accepts accounts of any organisation, but its administrator has \
                 not said which organisations may sign in: set auth.allowed_tenants to the tenant \
                 ids to let in (or [\"*\"] for every tenant)."
            }
            AuthError::NoAppRole(roles) => {
                return format!(
                    "Your account signed in, but it has not been assigned a role in this application \
                     ({roles}). Ask an administrator to assign you one, then sign in again."
                )
                .into();
            }
            AuthError::ClientAuthRejected {
                code,
                method,
                offered,
            } => {
                return format!(
                    "The identity provider answered {code} to the token request. This \
                     application authenticated with {method}; the provider's discovery lists: \
                     {offered}. An administrator must make the setting auth.client_auth_method \
                     (and the secret or certificate) match the client's registration at the \
                     provider, then restart the application."
                )
                .into();
            }
            AuthError::ProviderMismatch(why) => {
                return format!(
                    "The identity provider answered, but {why}. An administrator must change the \
                     setting, then restart the application."
                )
                .into();
            }
            AuthError::GroupsOverage => {
                "Your account is a member of more groups than a token can carry (groups overage), so \
                 this application cannot tell your role. An administrator can fix this by assigning app \
                 roles instead of groups, or by filtering the groups claim in the app registration \
                 (Token configuration: \"Groups assigned to the application\")."
            }
            AuthError::SessionRevoked(_) => {
                "The identity provider no longer accepts your sign-in: your account may have been \
                 disabled, its access removed, or you signed out elsewhere. Sign in again."
            }
            AuthError::RoleCheckUnavailable => {
                "This application re-checks your roles with the identity provider regularly, and \
                 could not reach it for longer than allowed (auth.roles_grace_minutes). Sign in again."
            }
            AuthError::SignOutUnconfirmed => {
                "The sign-out request did not come from this application's own Sign out button, \
                 so nothing was changed. To sign out, use the Sign out button."
            }
            AuthError::SignInRequired(_) => {
                "This application re-checked your sign-in with the identity provider, which asks \
                 you to sign in again. Start again from the sign-in page."
            }
            AuthError::ConsentDeclined(scopes) => {
                return format!(
                    "The page you opened needs your permission to use {scopes}, and it was not \
                     given. You are still signed in and everything else works as before; open \
                     the page again to be asked once more."
                )
                .into();
            }
            AuthError::ConsentNotGranted(scopes) => {
                return format!(
                    "The identity provider returned without granting {scopes}, so the page that \
                     needs it stays unavailable. An administrator may have to grant it for your \
                     organisation (admin consent). You are still signed in."
                )
                .into();
            }
            AuthError::ProviderUnavailable(_) | AuthError::TokenEndpointTimeout => {
                "Please try again in a minute. If it keeps happening, tell the administrator."
            }
            AuthError::ProviderError { .. } => {
                "The sign-in was cancelled or refused at the identity provider. Start again from the sign-in page."
            }
            AuthError::CodeRejected(_) => {
                "The identity provider did not accept this sign-in's code: it may have expired or \
                 been used already. Start again from the sign-in page."
            }
            AuthError::StateMissing
            | AuthError::StateMismatch
            | AuthError::StateExpired
            | AuthError::BadCallback(_)
            | AuthError::IssuerMismatch => {
                "Sign-in links work once, in the browser that started them, for 10 minutes. \
                 Start again from the sign-in page; if it keeps failing, allow cookies for this site."
            }
            _ => {
                "Start again from the sign-in page. If it keeps happening, tell the administrator."
            }
        };
        text.into()
    }

    /// The provider's own error code and description, shown for `error=` callbacks only.
    pub fn provider_detail(&self) -> Option<String> {
        match self {
            AuthError::ProviderError { code, description } => Some(match description {
                Some(d) => format!("{code}: {d}"),
                None => code.clone(),
            }),
            _ => None,
        }
    }
}
