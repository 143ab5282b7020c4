//! Keeping secrets out of every output: human text, JSON, plans, errors and
//! diagnostics.
//!
//! An environment variable is secret when its name says so (`PASSWORD`,
//! `SECRET`, `TOKEN`, `KEY`, `CREDENTIAL`, `AUTH`, or `DATABASE_URL`, whose
//! value carries the database password); its value is replaced whole. Any
//! other value that looks like a URL with a password has the password
//! replaced. [`Redactor`] also scrubs free text (log lines, engine errors) of
//! the secret values it was given.

/// What replaces a secret.
pub const MASK: &str = "<redacted>";

const SECRET_WORDS: [&str; 7] = ["PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH", "PASSPHRASE"];

/// Whether an environment variable's value is secret, by its name.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.contains("DATABASE_URL") || SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// `NAME=value` with the value redacted when secret.
pub fn env_entry(entry: &str) -> String {
    match entry.split_once('=') {
        Some((name, _)) if is_secret_name(name) => format!("{name}={MASK}"),
        Some((name, value)) => format!("{name}={}", url_password(value)),
        None => entry.to_string(),
    }
}

/// Replaces the password in `scheme://user:password@host…`.
pub fn url_password(value: &str) -> String {
    match split_url_password(value) {
        Some((before, _, after)) => format!("{before}{MASK}{after}"),
        None => value.to_string(),
    }
}

/// `scheme://user:password@host…` → (`scheme://user:`, `password`, `@host…`).
fn split_url_password(value: &str) -> Option<(&str, &str, &str)> {
    let authority_start = value.find("://")? + 3;
    let rest = &value[authority_start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority_start + authority.rfind('@')?;
    let colon = authority_start + value[authority_start..at].find(':')?;
    Some((&value[..=colon], &value[colon + 1..at], &value[at..]))
}

/// Scrubs known secret values out of free text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for the secrets in these `NAME=value` entries.
    pub fn from_env(env: &[String]) -> Redactor {
        let mut secrets = Vec::new();
        for entry in env {
            let Some((name, value)) = entry.split_once('=') else {
                continue;
            };
            if is_secret_name(name) && value.len() >= 4 {
                secrets.push(value.to_string());
            }
            if let Some((_, password, _)) = split_url_password(value)
                && password.len() >= 4
            {
                secrets.push(password.to_string());
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// Adds one more secret value.
    pub fn add(&mut self, secret: &str) {
        if secret.len() >= 4 && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Adds every secret `other` knows.
    pub fn merge(&mut self, other: &Redactor) {
        for secret in &other.secrets {
            self.add(secret);
        }
    }

    /// The text with every known secret (and any URL password) masked.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out.split(' ').map(url_password).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_masked_whole() {
        assert_eq!(
            env_entry("DATABASE_URL=postgresql://u:hunter2@db/cl"),
            "DATABASE_URL=<redacted>"
        );
        assert_eq!(env_entry("CL_PASSWORD_KEYSTORE=abc"), "CL_PASSWORD_KEYSTORE=<redacted>");
        assert_eq!(env_entry("ETH_API_TOKEN=abc"), "ETH_API_TOKEN=<redacted>");
        assert_eq!(env_entry("LOG_LEVEL=info"), "LOG_LEVEL=info");
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            env_entry("ETH_URL=wss://me:pw1234@eth.example/ws"),
            "ETH_URL=wss://me:<redacted>@eth.example/ws"
        );
        assert_eq!(url_password("https://host/path?a=b"), "https://host/path?a=b");
        assert_eq!(url_password("postgres://user@host/db"), "postgres://user@host/db");
    }

    #[test]
    fn free_text_is_scrubbed() {
        let r = Redactor::from_env(&[
            "DATABASE_URL=postgresql://chainlink:hunter2@db.internal:5432/chainlink".into(),
            "ETH_URL=wss://me:pa55word@eth.example/ws".into(),
            "API_TOKEN=tok-123456".into(),
        ]);
        let text = "error: could not connect to postgresql://chainlink:hunter2@db.internal:5432/chainlink with tok-123456 (pa55word)";
        let clean = r.text(text);
        for secret in ["hunter2", "tok-123456", "pa55word"] {
            assert!(!clean.contains(secret), "{clean}");
        }
    }
}
