//! PostgreSQL going away and coming back: 503 with a reason while it is down, /healthz names it,
//! and service resumes by itself. Runs a private PostgreSQL cluster (Debian's binaries, run as
//! the `postgres` user); skipped without them unless `ROLEGATE_REQUIRE_SERVICES=1`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::helpers::{spawn_app_with, temp_dir};

struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                dirs.filter_map(|d| d.ok())
                    .map(|d| d.path().join("bin"))
                    .max()
            });
        let usable = bin.as_ref().is_some_and(|b| b.join("initdb").exists())
            && Command::new("runuser")
                .arg("--help")
                .stdout(Stdio::null())
                .status()
                .is_ok()
            && Command::new("id")
                .arg("postgres")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !usable {
            assert!(
                std::env::var("ROLEGATE_REQUIRE_SERVICES").is_err(),
                "PostgreSQL server binaries, runuser and a postgres user are required"
            );
            eprintln!("skipped: no PostgreSQL server binaries");
            return None;
        }
        let bin = bin?;
        let data = temp_dir().join("pg");
        std::fs::create_dir_all(&data).unwrap();
        let chown = Command::new("chown")
            .arg("-R")
            .arg("postgres:")
            .arg(data.parent().unwrap())
            .status()
            .unwrap();
        assert!(chown.success());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = PrivatePostgres { bin, data, port };
        let init = pg
            .as_postgres("initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&pg.data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(init.success(), "initdb");
        pg.up();
        Some(pg)
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
        cmd
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.display()
        );
        let started = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "30", "-o", &opts, "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(started.success(), "pg_ctl start");
    }

    fn down(&self) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.down();
    }
}

#[tokio::test]
async fn postgres_outage_is_503_and_service_resumes() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let url = pg.url();
    let app = spawn_app_with(move |env| {
        env.insert("APP__DATABASE__URL".into(), url);
    })
    .await;
    app.sign_in("alice").await;
    assert_eq!(app.get("/notes").await.status(), 200);

    pg.down();
    let page = app.get("/notes").await;
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("is not answering"));
    let api = app.get("/api/notes").await;
    assert_eq!(api.status(), 503);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"], "unavailable");
    let health: serde_json::Value = app
        .wait_for("/healthz", 503)
        .await
        .expect("/healthz reports the outage")
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], "down");

    pg.up();
    let back = app.wait_for("/notes", 200).await.is_some();
    assert!(back, "service resumed by itself, session intact");
}
