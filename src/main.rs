//! `rolegate [serve | check-config | migrate]`.

use std::process::ExitCode;

use rolegate::settings::{self, Loaded};
use rolegate::startup::Application;
use rolegate::telemetry;

const USAGE: &str = "usage: rolegate [serve | check-config | migrate]

  serve         start the server (default)
  check-config  print the effective settings and every problem; exit 1 if any
  migrate       apply the database migrations

Settings: appsettings.json < appsettings.{APP_ENV}.json < APP__SECTION__KEY env vars.";

fn main() -> ExitCode {
    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    let loaded = settings::load_from_process();
    telemetry::init(&loaded.settings.log.filter);
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
    let result = match command.as_str() {
        "serve" => runtime.block_on(serve(loaded)),
        "check-config" => return check_config(&loaded),
        "migrate" => runtime.block_on(migrate(loaded)),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("error: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
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
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(loaded: Loaded) -> anyhow::Result<()> {
    let pool = rolegate::db::connect(&loaded.settings.database).await?;
    rolegate::db::migrate(&pool).await?;
    println!("migrations applied to {}", loaded.settings.database.url);
    Ok(())
}

fn check_config(loaded: &Loaded) -> ExitCode {
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
        println!("route rules (most specific first):");
        for line in config.rules().table() {
            println!("  {line}");
        }
    }
    for notice in settings::deprecations(&loaded.settings) {
        println!("\nwarning: {notice}");
    }
    if loaded.problems.is_empty() {
        println!("\nno problems found");
        ExitCode::SUCCESS
    } else {
        println!("\n{} problem(s):", loaded.problems.len());
        for p in &loaded.problems {
            println!("  - {p}");
        }
        ExitCode::FAILURE
    }
}
