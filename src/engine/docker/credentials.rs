//! Registry credentials found where the `docker` CLI finds them, in the
//! Docker config (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`):
//!
//! 1. `credHelpers["<registry>"]`: the helper `docker-credential-<name>` on `PATH`;
//! 2. else `credsStore`: that helper for every registry;
//! 3. else `auths["<registry>"]`: `auth` (base64 of `user:password`), or
//!    `username`/`password`, or `identitytoken`;
//! 4. else no credentials (an anonymous pull).
//!
//! A helper that answers "credentials not found" means an anonymous pull, as
//! for `docker`; a helper that fails otherwise fails the pull with its message.
//! Secrets never reach an error message or a log line.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use tokio::io::AsyncWriteExt;

/// How long a credential helper may take to answer.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// What `docker-credential-helpers` print when they have nothing for a registry.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The credentials for one registry and where they came from.
pub(super) struct Found {
    /// The credentials, when there are any.
    pub credentials: Option<DockerCredentials>,
    /// Where they came from, for messages (never the secret).
    pub origin: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, Option<AuthEntry>>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// The credentials for `server` (`host[:port]`, or `https://index.docker.io/v1/`
/// for Docker Hub) from the Docker config in `config_dir`.
pub(super) async fn lookup(config_dir: &Path, server: &str) -> Result<Found, String> {
    let path = config_dir.join("config.json");
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Found {
                credentials: None,
                origin: format!("none for {server}: {} does not exist", path.display()),
            });
        }
        Err(e) => return Err(format!("cannot read the Docker config {}: {e}", path.display())),
    };
    let config: ConfigFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the Docker config {} is not valid JSON ({e}); fix it, or point DOCKER_CONFIG at another directory",
            path.display()
        )
    })?;
    let helper = match config.cred_helpers.get(server).filter(|h| !h.is_empty()) {
        Some(helper) => Some((helper, "credHelpers")),
        None => config
            .creds_store
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| (h, "credsStore")),
    };
    if let Some((helper, key)) = helper {
        let origin = format!("docker-credential-{helper} ({key} in {})", path.display());
        let credentials = from_helper(helper, server)
            .await
            .map_err(|e| format!("cannot get the credentials for {server} from {origin}: {e}"))?;
        let origin = match credentials {
            Some(_) => origin,
            None => format!("none for {server}: {origin} has none"),
        };
        return Ok(Found { credentials, origin });
    }
    let wanted = hostname(server);
    let entry = config.auths.get(server).or_else(|| {
        config
            .auths
            .iter()
            .find(|(key, _)| hostname(key) == wanted)
            .map(|(_, entry)| entry)
    });
    let credentials = match entry.and_then(Option::as_ref) {
        Some(entry) => {
            from_entry(entry, server).map_err(|e| format!("auths[\"{server}\"] in {}: {e}", path.display()))?
        }
        None => None,
    };
    let origin = match credentials {
        Some(_) => format!("auths in {}", path.display()),
        None => format!(
            "none for {server} in {} (`docker login {server}` adds them)",
            path.display()
        ),
    };
    Ok(Found { credentials, origin })
}

/// `https://host/v1/` → `host`, as `docker` compares `auths` keys.
fn hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// Credentials from an `auths` entry (`auth` wins over `username`/`password`,
/// as in `docker`); `None` for an empty entry.
fn from_entry(entry: &AuthEntry, server: &str) -> Result<Option<DockerCredentials>, String> {
    let (username, password) = match entry.auth.as_deref().filter(|a| !a.is_empty()) {
        Some(auth) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| "`auth` is not base64".to_string())?;
            let decoded = String::from_utf8(decoded).map_err(|_| "`auth` is not UTF-8 text".to_string())?;
            let (user, pass) = decoded
                .split_once(':')
                .ok_or_else(|| "`auth` does not hold user:password".to_string())?;
            (Some(user.to_string()), Some(pass.to_string()))
        }
        None => (entry.username.clone(), entry.password.clone()),
    };
    let token = entry.identitytoken.clone().filter(|t| !t.is_empty());
    if username.as_deref().unwrap_or_default().is_empty() && token.is_none() {
        return Ok(None);
    }
    Ok(Some(DockerCredentials {
        username,
        password,
        identitytoken: token,
        serveraddress: Some(server.to_string()),
        ..Default::default()
    }))
}

/// `docker-credential-NAME get` with `server` on its standard input.
async fn from_helper(name: &str, server: &str) -> Result<Option<DockerCredentials>, String> {
    let program = format!("docker-credential-{name}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} is not on PATH; install it, or change the Docker config")
            } else {
                format!("cannot run {program}: {e}")
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading; its answer tells what happened.
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("{program} did not answer within {}s", HELPER_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot read the answer of {program}: {e}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if said == NOT_FOUND {
            return Ok(None);
        }
        let err = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let message = [said, err]
            .into_iter()
            .find(|m| !m.is_empty())
            .map(|m| first_line(&m))
            .unwrap_or_else(|| "no message".to_string());
        return Err(format!("{program} failed ({}): {message}", output.status));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| format!("{program} answered something other than {{\"Username\":…,\"Secret\":…}}"))?;
    if answer.username == "<token>" {
        return Ok(Some(DockerCredentials {
            identitytoken: Some(answer.secret),
            serveraddress: Some(server.to_string()),
            ..Default::default()
        }));
    }
    Ok(Some(DockerCredentials {
        username: Some(answer.username),
        password: Some(answer.secret),
        serveraddress: Some(server.to_string()),
        ..Default::default()
    }))
}

/// The first line of a helper's message, cut to a readable length.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: &str) -> AuthEntry {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn auth_wins_and_holds_passwords_with_colons_and_odd_characters() {
        let auth = base64::engine::general_purpose::STANDARD.encode("op:p>a+s/s=:x");
        let found = from_entry(&entry(&format!(r#"{{"auth":"{auth}","username":"other"}}"#)), "r:5000")
            .unwrap()
            .unwrap();
        assert_eq!(found.username.as_deref(), Some("op"));
        assert_eq!(found.password.as_deref(), Some("p>a+s/s=:x"));
        assert_eq!(found.serveraddress.as_deref(), Some("r:5000"));
    }

    #[test]
    fn username_and_password_fields_or_a_token_also_count_and_empty_entries_do_not() {
        let found = from_entry(&entry(r#"{"username":"u","password":"p"}"#), "r")
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.username.as_deref(), found.password.as_deref()),
            (Some("u"), Some("p"))
        );
        let found = from_entry(&entry(r#"{"identitytoken":"tok"}"#), "r").unwrap().unwrap();
        assert_eq!(found.identitytoken.as_deref(), Some("tok"));
        assert!(from_entry(&entry("{}"), "r").unwrap().is_none());
        assert!(from_entry(&entry(r#"{"auth":"***"}"#), "r").is_err());
    }

    #[test]
    fn auths_keys_compare_by_hostname() {
        assert_eq!(hostname("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(hostname("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(hostname("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn helper_messages_are_one_short_line() {
        assert_eq!(first_line("bad\nsecond"), "bad");
        assert_eq!(first_line(&"x".repeat(300)).chars().count(), 201);
    }
}
