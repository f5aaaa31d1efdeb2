//! rolegate's integration tests: one binary, rolegate on port 0 against an in-process provider.

mod admin;
mod api_tokens;
mod authorization;
mod bearer;
mod callback;
mod certificate;
mod client_auth;
mod fake_idp;
mod floods;
mod fuzz;
mod guards;
mod hardening_app;
mod hardening_auth;
mod helpers;
mod id_token;
mod issuers;
mod json_logs;
mod live_roles;
mod login;
mod logout;
mod metrics;
mod notes;
mod online_check;
mod operator;
mod outage;
mod probes;
mod profile;
mod provider;
mod role_claim;
mod scale_out;
mod settings;
mod settings_props;
mod shutdown;
mod single_sign_out;
mod tenants;

/// Every audit event rolegate writes.
pub const EVENTS: [&str; 9] = rolegate::db::audit::EVENTS;
