//! `rolegate [serve | check-config | migrate | sessions ... | audit tail ...]`; the parsing
//! and the operator commands live in `rolegate::operator`.

use std::process::ExitCode;

use clap::Parser as _;
use rolegate::operator::{Cli, Command};
use rolegate::settings::{self, Loaded};
use rolegate::startup::Application;
use rolegate::telemetry;

fn main() -> ExitCode {
    let command = match Cli::try_parse() {
        Ok(cli) => cli.command.unwrap_or(Command::Serve),
        Err(e) => {
            // Help and version go to stdout with 0; a usage error to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let loaded = settings::load_from_process();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Serve => {
            let _logs =
                telemetry::init_with(&loaded.settings.log.filter, loaded.settings.log.format);
            runtime.block_on(serve(loaded))
        }
        Command::CheckConfig { online } => {
            let report = online.then(|| runtime.block_on(check_online(&loaded)));
            return check_config(&loaded, report);
        }
        Command::Migrate => {
            let _logs =
                telemetry::init_with(&loaded.settings.log.filter, loaded.settings.log.format);
            runtime.block_on(migrate(loaded))
        }
        // Operator commands print their results on stdout: no log lines there.
        other => return runtime.block_on(rolegate::operator::run(other, loaded)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(loaded: Loaded) -> anyhow::Result<()> {
    let app = Application::build(loaded.clone()).await?;
    tracing::info!(
        env = %loaded.settings.env,
        url = %loaded.settings.server.public_url,
        port = app.port(),
        "rolegate listening"
    );
    app.stop_on_signals();
    app.run_until_stopped().await?;
    tracing::info!("shutdown: complete");
    Ok(())
}

async fn migrate(loaded: Loaded) -> anyhow::Result<()> {
    let pool = rolegate::db::connect(&loaded.settings.database).await?;
    rolegate::db::migrate(&pool).await?;
    println!("migrations applied to {}", loaded.settings.database.url);
    Ok(())
}

/// `--online`: the provider's discovery and keys against the settings, or why it could not run.
async fn check_online(loaded: &Loaded) -> rolegate_auth::ProviderReport {
    match settings::auth_config(&loaded.settings) {
        Ok(config) => rolegate_auth::check_provider(&config).await,
        Err(_) => rolegate_auth::ProviderReport {
            warnings: vec![
                "online check skipped: the sign-in settings have problems (listed below)".into(),
            ],
            ..Default::default()
        },
    }
}

fn check_config(loaded: &Loaded, online: Option<rolegate_auth::ProviderReport>) -> ExitCode {
    println!("rolegate settings (APP_ENV={})", loaded.settings.env);
    let width = loaded
        .entries
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(0);
    let value_width = loaded
        .entries
        .iter()
        .map(|e| e.value.chars().count().min(60))
        .max()
        .unwrap_or(0);
    for e in &loaded.entries {
        println!(
            "  {:width$}  {:value_width$}  [{}]",
            e.key, e.value, e.origin
        );
    }
    print_authority(&loaded.settings);
    if let Ok(config) = settings::auth_config(&loaded.settings) {
        println!(
            "\nrole hierarchy (each implies those after it): {}",
            config.roles().describe()
        );
        println!("roles come from: {}", config.role_source().describe());
        println!(
            "Bearer access tokens: aud one of {}; delegated scp one of {}",
            config.api_audiences().join(", "),
            config.api_scopes().join(", ")
        );
        match config.client_certificate() {
            // Public facts only: the key never leaves the process.
            Some(cert) => println!(
                "client credential: certificate {}, thumbprint (x5t#S256) {}, SHA-1 {} (as the Entra portal lists it), notAfter {}",
                cert.subject(),
                cert.thumbprint(),
                cert.sha1_thumbprint(),
                cert.not_after_text()
            ),
            None => println!("client credential: client secret"),
        }
        println!("issuer: {}", config.describe_issuer());
        if let Some(p) = &config.b2c().sign_up_sign_in {
            let b2c = config.b2c();
            let or_unset = |p: &Option<String>| p.clone().unwrap_or_else(|| "unset".into());
            println!(
                "B2C policies: sign-up/sign-in {p}, profile edit {}, password reset {}",
                or_unset(&b2c.edit_profile),
                or_unset(&b2c.reset_password)
            );
        }
        println!("route rules (most specific first):");
        for line in config.rules().table() {
            println!("  {line}");
        }
    }
    let online = online.unwrap_or_default();
    if !online.facts.is_empty() {
        println!("\nidentity provider (online):");
        for fact in &online.facts {
            println!("  {fact}");
        }
    }
    let notices = settings::notices(&loaded.settings, std::time::SystemTime::now());
    for notice in notices.iter().chain(&online.warnings) {
        println!("\nwarning: {notice}");
    }
    let problems: Vec<String> = loaded
        .problems
        .iter()
        .map(ToString::to_string)
        .chain(
            online
                .problems
                .iter()
                .map(|p| format!("identity provider: {p}")),
        )
        .collect();
    if problems.is_empty() {
        println!("\nno problems found");
        ExitCode::SUCCESS
    } else {
        println!("\n{} problem(s):", problems.len());
        for p in &problems {
            println!("  - {p}");
        }
        ExitCode::FAILURE
    }
}

/// The authority rolegate discovers, where it came from, the issuer it expects before
/// discovery, and the tenants it lets in.
fn print_authority(s: &settings::Settings) {
    let Some(authority) = &s.auth.authority else {
        return;
    };
    let from = if s.auth.authority_derived {
        "auth.instance + auth.tenant_id"
    } else {
        "auth.authority"
    };
    println!("\nauthority: {authority} (from {from})");
    let issuer = rolegate_auth::expected_issuer(authority);
    if issuer.contains("{tenantid}") {
        println!("issuer expected: {issuer} (multi-tenant: {{tenantid}} is each token's tid)");
    } else {
        println!("issuer expected: {issuer}");
    }
    let tenants = if s.auth.allowed_tenants.is_empty() {
        "the authority's own tenant (auth.allowed_tenants unset)".to_owned()
    } else {
        s.auth.allowed_tenants.join(", ")
    };
    println!("tenants allowed: {tenants}");
}
