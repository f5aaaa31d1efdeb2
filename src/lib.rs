//! rolegate: the DemoApp server around the `rolegate-auth` crate (Tera pages, sqlx data,
//! layered settings). The sign-in and role logic lives in `crates/rolegate-auth`.

pub mod admin_views;
pub mod audit;
pub mod chart;
pub mod clock;
pub mod csrf;
pub mod db;
pub mod error;
pub mod metrics;
pub mod net;
pub mod notes;
pub mod operator;
pub mod progress;
pub mod rate_limit;
pub mod routes;
pub mod session_store;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod templates;
