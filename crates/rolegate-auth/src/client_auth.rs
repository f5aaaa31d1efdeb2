//! `auth.client_auth_method`: how the token call authenticates the application, and the
//! `auto` rule that picks one from the credential, the authority's shape and discovery.

use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::client_credential::ClientCredential;
use crate::metadata::is_loopback_host;

/// The token endpoint client authentication method (OIDC Core 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// Certificate → `private_key_jwt`; secret → `client_secret_post` for Entra-shaped
    /// authorities that list it, `client_secret_basic` (the OIDC default) elsewhere.
    #[default]
    Auto,
    /// The secret in an HTTP Basic `Authorization` header.
    ClientSecretBasic,
    /// The secret in the POST body.
    ClientSecretPost,
    /// A JWT signed with the client certificate's key.
    PrivateKeyJwt,
}

/// The values `auth.client_auth_method` accepts, for messages.
pub const CLIENT_AUTH_METHODS: &str =
    "auto, client_secret_basic, client_secret_post, private_key_jwt";

impl ClientAuthMethod {
    /// The name discovery and the setting use.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::Auto => "auto",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Why an explicit method cannot work with `credential`, if it cannot.
    pub(crate) fn misfit(self, credential: &ClientCredential) -> Option<String> {
        match (self, credential) {
            (ClientAuthMethod::PrivateKeyJwt, ClientCredential::Secret(_)) => Some(
                "is private_key_jwt, which needs a client certificate \
                 (client_certificate.certificate_file + private_key_file); set them, or use \
                 auto / client_secret_post / client_secret_basic with the secret"
                    .into(),
            ),
            (
                ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost,
                ClientCredential::Certificate(_),
            ) => Some(format!(
                "is {}, which needs a client secret, but the credential is a certificate; set it \
                 to private_key_jwt or auto",
                self.as_str()
            )),
            _ => None,
        }
    }
}

impl fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientAuthMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(ClientAuthMethod::Auto),
            "client_secret_basic" => Ok(ClientAuthMethod::ClientSecretBasic),
            "client_secret_post" => Ok(ClientAuthMethod::ClientSecretPost),
            "private_key_jwt" => Ok(ClientAuthMethod::PrivateKeyJwt),
            _ => Err(format!(
                "{s:?} is not a client authentication method; use one of {CLIENT_AUTH_METHODS}"
            )),
        }
    }
}

/// Entra's sign-in hosts, and loopback dev authorities whose path starts with a GUID tenant
/// (the dev IdP's Entra mode): these get `client_secret_post`, as Microsoft's samples use.
pub(crate) fn entra_shaped(authority: &Url) -> bool {
    let host = authority.host_str().unwrap_or("").to_ascii_lowercase();
    if host == "login.microsoftonline.com"
        || host.ends_with(".ciamlogin.com")
        || host.ends_with(".b2clogin.com")
    {
        return true;
    }
    is_loopback_host(authority)
        && authority
            .path_segments()
            .and_then(|mut s| s.next())
            .is_some_and(uuid_like)
}

fn uuid_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The method the token call uses: the configured one, or `auto`'s pick.
pub(crate) fn choose(
    configured: ClientAuthMethod,
    credential: &ClientCredential,
    authority: &Url,
    listed: &[String],
) -> ClientAuthMethod {
    if configured != ClientAuthMethod::Auto {
        return configured;
    }
    if matches!(credential, ClientCredential::Certificate(_)) {
        return ClientAuthMethod::PrivateKeyJwt;
    }
    let has = |m: ClientAuthMethod| listed.iter().any(|l| l == m.as_str());
    let basic_ok = listed.is_empty() || has(ClientAuthMethod::ClientSecretBasic);
    let post_ok = has(ClientAuthMethod::ClientSecretPost);
    if post_ok && (entra_shaped(authority) || !basic_ok) {
        ClientAuthMethod::ClientSecretPost
    } else {
        ClientAuthMethod::ClientSecretBasic
    }
}

/// Discovery's list as one phrase for pages and logs (OIDC's default when it lists none).
pub(crate) fn describe_listed(listed: &[String]) -> String {
    if listed.is_empty() {
        "none listed (OIDC default: client_secret_basic)".into()
    } else {
        listed.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn entra_shapes_are_recognised() {
        assert!(entra_shaped(&url(
            "https://login.microsoftonline.com/common/v2.0"
        )));
        assert!(entra_shaped(&url("https://c.ciamlogin.com/t/v2.0")));
        assert!(entra_shaped(&url("https://c.b2clogin.com/c/p/v2.0")));
        assert!(entra_shaped(&url(
            "http://127.0.0.1:4011/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
        )));
        assert!(!entra_shaped(&url("http://127.0.0.1:4011")));
        assert!(!entra_shaped(&url(
            "https://idp.example/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
        )));
        assert!(!entra_shaped(&url(
            "https://login.microsoftonline.com.evil.example/"
        )));
    }

    #[test]
    fn names_parse_and_unknown_ones_are_refused() {
        assert_eq!("".parse(), Ok(ClientAuthMethod::Auto));
        assert_eq!(
            " Client_Secret_Basic ".parse(),
            Ok(ClientAuthMethod::ClientSecretBasic)
        );
        assert!("tls_client_auth".parse::<ClientAuthMethod>().is_err());
    }
}
