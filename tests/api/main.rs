//! rolegate's integration tests: one binary, rolegate on port 0 against an in-process provider.

mod bearer;
mod callback;
mod fake_idp;
mod guards;
mod helpers;
mod id_token;
mod login;
mod logout;
mod provider;
mod settings;
