//! rolegate: OpenID Connect sign-in and app-role authorization for Actix-web.

pub mod audit;
pub mod auth;
pub mod chart;
pub mod csrf;
pub mod db;
pub mod error;
pub mod net;
pub mod routes;
pub mod session_store;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod templates;
