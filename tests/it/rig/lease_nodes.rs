//! Lease-era nodes on the test's PostgreSQL server: a v1 node's
//! `DATABASE_URL` pointed at it, a 2.x node's TOML files naming it, and
//! how a node on the second engine reaches it (the server's port published
//! on the second engine's bridge address).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::postgres::{DB_LABEL, Postgres};
use super::{PID_LABEL, Rig};

type Servers = Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Postgres>>>>>;

impl Rig {
    /// This test's PostgreSQL server, started on the first call (later and
    /// concurrent calls get the same one).
    pub async fn database(&self) -> Arc<Postgres> {
        static SERVERS: OnceLock<Servers> = OnceLock::new();
        let servers = SERVERS.get_or_init(Default::default);
        let cell = servers.lock().unwrap().entry(self.id.clone()).or_default().clone();
        let started = cell.get_or_init(|| async {
            // Not the test's label: tests count the node containers they made.
            let labels = HashMap::from([
                (DB_LABEL.to_string(), self.id.clone()),
                (PID_LABEL.to_string(), std::process::id().to_string()),
            ]);
            let gateway = super::second::gateway();
            Arc::new(Postgres::launch_named(self.docker.clone(), &self.id, self.labels(), labels, gateway).await)
        });
        started.await.clone()
    }
}

/// How the rig starts a 2.x node: its TOML files on the volume.
pub const V2_COMMAND: [&str; 8] = [
    "node",
    "-config",
    "/chainlink/config.toml",
    "-secrets",
    "/chainlink/secrets.toml",
    "start",
    "-a",
    "/chainlink/.api",
];

impl Rig {
    /// Writes a 2.x node's `config.toml` (when the test wrote none) and its
    /// `secrets.toml` naming `url`, on the test's volume.
    pub fn write_v2_config(&self, url: &str) {
        let config = self.dir.join("config.toml");
        if !config.exists() {
            std::fs::write(&config, "[Log]\nLevel = 'info'\n").expect("write config.toml");
        }
        let secrets = format!("[Database]\nURL = '{url}'\n\n[Password]\nKeystore = 'keystore-pw-0123456789'\n");
        std::fs::write(self.dir.join("secrets.toml"), secrets).expect("write secrets.toml");
    }
}

/// Points a v1 node's `DATABASE_URL` at the test's server: one the test
/// set keeps its password and database name (the rig creates that
/// database), only its host moves; none set gets the server's URL.
pub(super) async fn point_at(db: &Postgres, env: &mut Vec<String>, on_second: bool) {
    let url = db.url_for(on_second);
    match env.iter_mut().find(|e| e.starts_with("DATABASE_URL=")) {
        Some(entry) => {
            let given = entry["DATABASE_URL=".len()..].to_string();
            let password = given
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('@'))
                .and_then(|(user, _)| user.split_once(':'))
                .map(|(_, pw)| pw.to_string())
                .unwrap_or_else(|| db.password.clone());
            let name = given
                .rsplit_once('/')
                .map(|(_, n)| n.split('?').next().unwrap_or_default().to_string())
                .filter(|n| !n.is_empty() && !n.contains('@'))
                .unwrap_or_else(|| "chainlink".to_string());
            db.create_database(&name).await;
            let url = url
                .replace(&format!(":{}@", db.password), &format!(":{password}@"))
                .replace("/chainlink?", &format!("/{name}?"));
            *entry = format!("DATABASE_URL={url}");
        }
        None => env.push(format!("DATABASE_URL={url}")),
    }
}

impl Postgres {
    /// The URL a node uses: on the first engine, through the database's
    /// network; on the second, through the port published on its bridge.
    pub fn url_for(&self, on_second: bool) -> String {
        if !on_second {
            return self.url();
        }
        let Some(address) = &self.second_address else {
            panic!(
                "a lease-era node on the second engine needs the test's PostgreSQL server published on that engine's bridge: make sure of the second engine (rig.docker_on(Engine::Second)) before the first node starts"
            )
        };
        self.url_at(address)
    }

    /// Creates database `name` unless it exists (the lease table and the
    /// version table are per database).
    pub async fn create_database(&self, name: &str) {
        let exists = self
            .psql(&format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"))
            .await;
        if exists != "1" {
            self.psql(&format!("CREATE DATABASE \"{name}\" OWNER chainlink")).await;
        }
    }

    /// Sets the version the downgrade guard reads, like Chainlink's
    /// `UpsertNodeVersion`: `node_versions` holds one row, now `version`.
    pub async fn set_version(&self, version: &str) {
        let v = version.replace('\'', "''");
        self.psql(&format!(
            "CREATE TABLE IF NOT EXISTS node_versions (version TEXT PRIMARY KEY, created_at TIMESTAMP NOT NULL DEFAULT NOW());
             CREATE UNIQUE INDEX IF NOT EXISTS idx_only_one_node_version ON node_versions ((version IS NOT NULL));
             INSERT INTO node_versions (version, created_at) VALUES ('{v}', NOW())
             ON CONFLICT ((version IS NOT NULL)) DO UPDATE SET version = EXCLUDED.version, created_at = EXCLUDED.created_at"
        ))
        .await;
    }

    /// The `lease_lock` row: its `client_id` and whether it is live
    /// (`expires_at > NOW()`); `None` with no table or no row.
    pub async fn lease(&self) -> Option<(String, bool)> {
        if self.psql("SELECT to_regclass('lease_lock') IS NOT NULL").await != "t" {
            return None;
        }
        let sql = "SELECT client_id::text || '|' || (expires_at > NOW())::text FROM lease_lock LIMIT 1";
        let row = self.psql(sql).await;
        let (client, live) = row.split_once('|')?;
        Some((client.to_string(), live == "true"))
    }
}
