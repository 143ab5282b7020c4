//! A node's configuration: v2's files, as its command line names them
//! (`node -config FILE… -secrets FILE… start`, then `CL_CONFIG`), and v1's
//! environment. Here: where its secrets are, the database URL they hold
//! (`[Database] URL`), and the node's HTTP port (`[WebServer] HTTPPort`).

/// The secrets files a node's command line names (`-secrets F`,
/// `--secrets F`, `-s F`, `-secrets=F`), in order: a later file overrides
/// an earlier one.
pub fn secrets_files(args: &[String]) -> Vec<String> {
    files_of(args, "secrets", "s")
}

/// The configuration files a node's command line names (`-config F`,
/// `--config F`, `-c F`, `-config=F`), in the order the node applies them.
pub fn config_files(args: &[String]) -> Vec<String> {
    files_of(args, "config", "c")
}

/// The values of the flag `long` (or its short form) on a command line.
fn files_of(args: &[String], long: &str, short: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut next_is_file = false;
    for arg in args {
        if next_is_file {
            files.push(arg.clone());
            next_is_file = false;
            continue;
        }
        if !arg.starts_with('-') {
            continue;
        }
        let flag = arg.trim_start_matches('-');
        match flag.split_once('=') {
            Some((f, file)) if f == long || f == short => files.push(file.to_string()),
            None if flag == long || flag == short => next_is_file = true,
            _ => {}
        }
    }
    files
}

/// The default of the node's `[WebServer] HTTPPort` (and of v1's
/// `CHAINLINK_PORT`).
pub const DEFAULT_HTTP_PORT: u16 = 6688;

/// The node's HTTP port inside its container, and what set it: the last of
/// its `-config` files (`configs`, as `(path, text)` in command-line order)
/// and `CL_CONFIG` that sets `[WebServer] HTTPPort`, else v1's
/// `CHAINLINK_PORT`. `None` when nothing sets it (the node then listens
/// on 6688, or its log says where).
pub fn http_port(configs: &[(String, String)], env: &[String]) -> Option<(u16, String)> {
    let var = |name: &str| {
        env.iter()
            .rev()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
    };
    let mut found = None;
    for (path, text) in configs {
        if let Some(port) = toml_http_port(text) {
            found = Some((port, format!("{path} ([WebServer] HTTPPort)")));
        }
    }
    if let Some(port) = var("CL_CONFIG").as_deref().and_then(toml_http_port) {
        found = Some((port, "CL_CONFIG ([WebServer] HTTPPort)".to_string()));
    }
    found.or_else(|| {
        let port = var("CHAINLINK_PORT")?.trim().parse().ok()?;
        Some((port, "CHAINLINK_PORT".to_string()))
    })
}

/// `[WebServer] HTTPPort` of a TOML document, if it sets one.
fn toml_http_port(text: &str) -> Option<u16> {
    let doc: toml::Table = text.parse().ok()?;
    let port = doc.get("WebServer")?.as_table()?.get("HTTPPort")?.as_integer()?;
    u16::try_from(port).ok().filter(|p| *p != 0)
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

/// Why a node configured by `env` cannot be moved to version `to`: it sets
/// legacy variables a 2.x node refuses at boot. `None` when `to` is older
/// than 2.0 or unknown, or nothing legacy is set. No flag overrides it: the
/// new node would not start.
pub fn v2_refusal(env: &[String], to: &str) -> Option<(String, Vec<String>)> {
    let to_v = super::version::Version::parse(to)?;
    if to_v.major < 2 {
        return None;
    }
    let mut set: Vec<&str> = env
        .iter()
        .filter_map(|e| e.split_once('=').map(|(n, _)| n))
        .filter(|n| super::legacy::is_legacy(n))
        .collect();
    set.dedup();
    if set.is_empty() {
        return None;
    }
    Some((
        format!(
            "{to} is a Chainlink 2.x release, and 2.x refuses the legacy environment variables this node is configured by ({}): the new node would stop at boot (\"environment variable {} must not be set: unsupported with config v2\")",
            set.join(", "),
            set[0]
        ),
        vec![
            "move the node's configuration to TOML first, on a 1.x release that reads it (1.13): a config.toml and a secrets.toml, passed with `node -config … -secrets … start` (Chainlink's \"Configuring Chainlink Nodes\" guide), then upgrade".into(),
            "--force does not override this: the 2.x node would not start".into(),
        ],
    ))
}

/// `[Database] URL` of a secrets file, if it sets one.
pub fn database_url(secrets: &str) -> Option<String> {
    let doc: toml::Table = secrets.parse().ok()?;
    let url = doc.get("Database")?.as_table()?.get("URL")?.as_str()?;
    (!url.is_empty()).then(|| url.to_string())
}

/// The setting that makes a node on the host's network listen on `port`
/// instead (a standby beside the node on one host): in 2.x `[WebServer]
/// HTTPPort` in `CL_CONFIG`, merged into the `CL_CONFIG` the node has
/// (`env`), as TOML; before 2.0 `CHAINLINK_PORT`. `Err` when the node's
/// `version` is not known: which one applies is not guessed.
pub fn listen_on(env: &[String], version: Option<&str>, port: u16) -> Result<(String, String), String> {
    let major = version
        .and_then(crate::node::version::Version::parse)
        .map(|v| v.major)
        .ok_or("the node's version is not known, so cl-maint cannot tell whether it reads CL_CONFIG (2.x) or CHAINLINK_PORT (1.x)")?;
    if major < 2 {
        return Ok(("CHAINLINK_PORT".into(), port.to_string()));
    }
    let given = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("CL_CONFIG="))
        .unwrap_or("");
    let mut table: toml::Table = toml::from_str(given).map_err(|e| format!("the node's CL_CONFIG is not TOML: {e}"))?;
    let web = table
        .entry("WebServer")
        .or_insert_with(|| toml::Value::Table(Default::default()));
    let toml::Value::Table(web) = web else {
        return Err("the node's CL_CONFIG has a WebServer that is not a table".into());
    };
    web.insert("HTTPPort".into(), toml::Value::Integer(port.into()));
    let text = toml::to_string(&table).map_err(|e| e.to_string())?;
    Ok(("CL_CONFIG".into(), text))
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
    fn the_http_port_is_the_last_setting_that_names_one() {
        let line = "node -c /a.toml --config=/b.toml -config /c.toml -secrets /s.toml start";
        assert_eq!(config_files(&args(line)), vec!["/a.toml", "/b.toml", "/c.toml"]);
        let configs = vec![
            ("/a.toml".to_string(), "[WebServer]\nHTTPPort = 6690\n".to_string()),
            ("/b.toml".to_string(), "[Log]\nLevel = 'debug'\n".to_string()),
        ];
        assert_eq!(
            http_port(&configs, &[]),
            Some((6690, "/a.toml ([WebServer] HTTPPort)".to_string()))
        );
        let env = vec!["CL_CONFIG=[WebServer]\nHTTPPort = 7000".to_string()];
        assert_eq!(
            http_port(&configs, &env).map(|p| p.0),
            Some(7000),
            "CL_CONFIG applies last"
        );
        assert_eq!(
            http_port(&[], &["CHAINLINK_PORT=6700".to_string()]),
            Some((6700, "CHAINLINK_PORT".to_string()))
        );
        assert_eq!(http_port(&configs[1..], &["ROOT=/chainlink".to_string()]), None);
        let broken = vec![("/x.toml".to_string(), "[WebServer\nHTTPPort = 1".to_string())];
        assert_eq!(http_port(&broken, &[]), None, "an unreadable file sets nothing");
    }

    #[test]
    fn legacy_variables_block_the_move_to_2x_only() {
        let env = vec![
            "DATABASE_URL=postgresql://x".to_string(),
            "ROOT=/chainlink".into(),
            "ETH_URL=ws://e".into(),
        ];
        let (what, next) = v2_refusal(&env, "2.10.0").expect("refused");
        assert!(what.contains("(DATABASE_URL, ROOT, ETH_URL)"), "{what}");
        assert!(next[0].contains("TOML"), "{next:?}");
        assert_eq!(v2_refusal(&env, "1.13.0"), None);
        assert_eq!(v2_refusal(&env, "latest"), None, "unknown until the image says");
        let v2 = vec![
            "CL_DATABASE_URL=postgresql://x".to_string(),
            "DATABASE_TIMEOUT=0".into(),
        ];
        assert_eq!(
            v2_refusal(&v2, "2.10.0"),
            None,
            "DATABASE_TIMEOUT is ignored by 2.x, not refused"
        );
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

    #[test]
    fn a_standby_on_the_hosts_network_listens_by_the_nodes_own_setting() {
        let env =
            vec!["CL_CONFIG=[Log]\nLevel = 'warn'\n[WebServer]\nHTTPPort = 28688\nListenIP = '0.0.0.0'\n".to_string()];
        let (name, value) = listen_on(&env, Some("2.10.0"), 28687).unwrap();
        assert_eq!(name, "CL_CONFIG");
        let merged: toml::Table = toml::from_str(&value).unwrap();
        assert_eq!(merged["WebServer"]["HTTPPort"].as_integer(), Some(28687));
        assert_eq!(merged["WebServer"]["ListenIP"].as_str(), Some("0.0.0.0"));
        assert_eq!(merged["Log"]["Level"].as_str(), Some("warn"));
        let (name, value) = listen_on(&[], Some("2.9.0"), 6687).unwrap();
        assert_eq!(
            (name.as_str(), value.trim()),
            ("CL_CONFIG", "[WebServer]\nHTTPPort = 6687")
        );
        assert_eq!(
            listen_on(&[], Some("1.1.0"), 6687).unwrap(),
            ("CHAINLINK_PORT".to_string(), "6687".to_string())
        );
        assert!(listen_on(&[], None, 6687).unwrap_err().contains("not known"));
        assert!(listen_on(&["CL_CONFIG=[[[".into()], Some("2.10.0"), 1).is_err());
    }
}
