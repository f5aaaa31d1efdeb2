//! The one HTTP client used for every call to the identity provider.

use std::time::Duration;

/// No redirects (a redirect could carry the client secret or code elsewhere) and hard timeouts
/// (a hanging provider must not hold a worker).
pub(crate) fn provider_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("rolegate/", env!("CARGO_PKG_VERSION")))
        .build()
}
