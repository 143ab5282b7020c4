//! A v2 node's configuration files, as its command line names them:
//! `node -config FILE… -secrets FILE… start`. Here: where its secrets are,
//! and the database URL they hold (`[Database] URL`).

/// The secrets files a node's command line names (`-secrets F`,
/// `--secrets F`, `-s F`, `-secrets=F`), in order: a later file overrides
/// an earlier one.
pub fn secrets_files(args: &[String]) -> Vec<String> {
    let mut files = Vec::new();
    let mut next_is_file = false;
    for arg in args {
        if next_is_file {
            files.push(arg.clone());
            next_is_file = false;
            continue;
        }
        let flag = arg.trim_start_matches('-');
        if !arg.starts_with('-') {
            continue;
        }
        match flag.split_once('=') {
            Some(("secrets" | "s", file)) => files.push(file.to_string()),
            None if flag == "secrets" || flag == "s" => next_is_file = true,
            _ => {}
        }
    }
    files
}

/// The environment variables that name a node's database: v1's
/// `DATABASE_URL`, and v2's `CL_DATABASE_URL`.
const URL_VARS: [&str; 2] = ["DATABASE_URL", "CL_DATABASE_URL"];

/// The variable naming the node's database in `env` (`NAME=value`
/// entries) and its value, if any; the last one set wins, as in the node's
/// environment.
pub fn database_url_var(env: &[String]) -> Option<(&'static str, String)> {
    env.iter().rev().find_map(|e| {
        let (name, value) = e.split_once('=')?;
        let var = URL_VARS.iter().find(|v| **v == name)?;
        (!value.is_empty()).then(|| (*var, value.to_string()))
    })
}

/// `[Database] URL` of a secrets file, if it sets one.
pub fn database_url(secrets: &str) -> Option<String> {
    let doc: toml::Table = secrets.parse().ok()?;
    let url = doc.get("Database")?.as_table()?.get("URL")?.as_str()?;
    (!url.is_empty()).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_secrets_files_of_a_command_line() {
        let line = "node -config /chainlink/config.toml -secrets /chainlink/secrets.toml start -a /chainlink/.api";
        assert_eq!(secrets_files(&args(line)), vec!["/chainlink/secrets.toml"]);
        let line = "node --secrets=/a.toml -s /b.toml -c /c.toml start";
        assert_eq!(secrets_files(&args(line)), vec!["/a.toml", "/b.toml"]);
        assert!(secrets_files(&args("local node")).is_empty());
    }

    #[test]
    fn the_database_url_of_a_secrets_file() {
        let text = "[Database]\nURL = 'postgresql://cl:pw@db:5432/cl?sslmode=disable'\n[Password]\nKeystore = 'x'\n";
        assert_eq!(
            database_url(text).as_deref(),
            Some("postgresql://cl:pw@db:5432/cl?sslmode=disable")
        );
        assert_eq!(database_url("[Password]\nKeystore = 'x'\n"), None);
        assert_eq!(database_url("not toml ["), None);
    }
}
