//! Endpoint resolution: precedence, contexts on disk, TLS material, errors.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// A Docker config directory of its own, removed on drop.
struct ConfigDir(PathBuf);

impl ConfigDir {
    fn new() -> ConfigDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clm-endpoint-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        ConfigDir(dir)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A context as `docker context create NAME --docker host=HOST[,skip-tls-verify=…]` stores it.
    fn context(&self, name: &str, host: &str, skip_verify: bool) {
        self.write(
            &format!("contexts/meta/{}/meta.json", context_id(name)),
            &format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip_verify}}}}}}}"#
            ),
        );
    }

    fn env(&self) -> Environment {
        Environment {
            docker_config: Some(self.0.clone()),
            ..Default::default()
        }
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unix(path: &str) -> Transport {
    Transport::Unix(PathBuf::from(path))
}

fn tcp(authority: &str) -> Transport {
    Transport::Tcp {
        authority: authority.to_string(),
        tls: None,
    }
}

#[test]
fn context_ids_are_the_sha256_of_the_name_as_docker_stores_them() {
    // `docker context create clmx` made contexts/meta/6157f6…/meta.json.
    assert_eq!(
        context_id("clmx"),
        "6157f608ecd3f4b948271c3fc839b31fd5a0003dea161aed82a52c282535c82d"
    );
}

#[test]
fn nothing_set_means_the_local_socket() {
    let config = ConfigDir::new();
    let endpoint = resolve(&config.env()).unwrap();
    assert_eq!(endpoint.transport, unix(DEFAULT_SOCKET));
    assert_eq!(endpoint.source, Source::Default);
    assert!(
        endpoint
            .describe()
            .starts_with("unix:///var/run/docker.sock (the default")
    );
}

#[test]
fn the_host_wins_over_contexts_and_says_whether_it_came_from_the_flag_or_docker_host() {
    let config = ConfigDir::new();
    config.write("config.json", r#"{"currentContext":"remote"}"#);
    config.context("remote", "tcp://10.9.9.9:2375", false);
    let mut env = Environment {
        host: Some("tcp://127.0.0.1:2375".into()),
        docker_context: Some("remote".into()),
        ..config.env()
    };
    let endpoint = resolve(&env).unwrap();
    assert_eq!(endpoint.transport, tcp("127.0.0.1:2375"));
    assert_eq!(endpoint.source, Source::Flag);
    assert_eq!(endpoint.describe(), "tcp://127.0.0.1:2375 (from --host)");

    env.docker_host = env.host.clone();
    let endpoint = resolve(&env).unwrap();
    assert_eq!(endpoint.source, Source::DockerHost);
    assert_eq!(endpoint.describe(), "tcp://127.0.0.1:2375 (from DOCKER_HOST)");
}

#[test]
fn docker_context_wins_over_the_current_context() {
    let config = ConfigDir::new();
    config.write("config.json", r#"{"auths":{},"currentContext":"stale"}"#);
    config.context("stale", "tcp://10.9.9.9:2375", false);
    config.context("prod", "unix:///run/prod.sock", false);
    let env = Environment {
        docker_context: Some("prod".into()),
        ..config.env()
    };
    let endpoint = resolve(&env).unwrap();
    assert_eq!(endpoint.transport, unix("/run/prod.sock"));
    assert_eq!(
        endpoint.source,
        Source::Context {
            name: "prod".into(),
            chosen_by: ContextChoice::Env
        }
    );
    assert_eq!(
        endpoint.describe(),
        "unix:///run/prod.sock (Docker context \"prod\" from DOCKER_CONTEXT)"
    );
}

#[test]
fn the_current_context_of_config_json_is_used() {
    let config = ConfigDir::new();
    config.write("config.json", r#"{"currentContext":"lab"}"#);
    config.context("lab", "tcp://engine.lab:2375", false);
    let endpoint = resolve(&config.env()).unwrap();
    assert_eq!(endpoint.transport, tcp("engine.lab:2375"));
    assert_eq!(endpoint.published_host(), "engine.lab");
    let described = endpoint.describe();
    assert!(
        described.contains("Docker context \"lab\", the current context in"),
        "{described}"
    );
    assert!(described.contains("config.json"), "{described}");
}

#[test]
fn the_context_named_default_is_the_local_socket() {
    let config = ConfigDir::new();
    config.write("config.json", r#"{"currentContext":"default"}"#);
    assert_eq!(resolve(&config.env()).unwrap().transport, unix(DEFAULT_SOCKET));
    let env = Environment {
        docker_context: Some("default".into()),
        ..config.env()
    };
    assert_eq!(resolve(&env).unwrap().source, Source::Default);
}

#[test]
fn the_config_dir_is_docker_config_else_home_dot_docker() {
    let env = Environment {
        home: Some("/home/op".into()),
        ..Default::default()
    };
    assert_eq!(env.config_dir(), PathBuf::from("/home/op/.docker"));
    let env = Environment {
        docker_config: Some("/etc/docker-op".into()),
        ..env
    };
    assert_eq!(env.config_dir(), PathBuf::from("/etc/docker-op"));
}

#[test]
fn a_missing_context_is_an_error_naming_it_and_what_to_do() {
    let config = ConfigDir::new();
    let env = Environment {
        docker_context: Some("gone".into()),
        ..config.env()
    };
    let e = resolve(&env).unwrap_err();
    assert_eq!(e.endpoint, "Docker context \"gone\" from DOCKER_CONTEXT");
    assert!(e.reason.contains("there is no such context"), "{}", e.reason);
    assert!(e.reason.contains("docker context ls"), "{}", e.reason);
}

#[test]
fn broken_files_are_errors_naming_the_file() {
    let config = ConfigDir::new();
    config.write("config.json", "{not json");
    let e = resolve(&config.env()).unwrap_err();
    assert!(e.reason.contains("config.json is not valid JSON"), "{}", e.reason);

    config.write("config.json", r#"{"currentContext":"odd"}"#);
    config.write(
        &format!("contexts/meta/{}/meta.json", context_id("odd")),
        r#"{"Name":"odd","Endpoints":{}}"#,
    );
    let e = resolve(&config.env()).unwrap_err();
    assert!(e.reason.contains("has no Docker endpoint"), "{}", e.reason);
}

#[test]
fn tls_from_docker_tls_verify_uses_docker_cert_path_else_the_config_dir() {
    let config = ConfigDir::new();
    config.write("ca.pem", "ca");
    let env = Environment {
        host: Some("tcp://10.0.0.5".into()),
        tls_verify: Some("1".into()),
        ..config.env()
    };
    let endpoint = resolve(&env).unwrap();
    let Transport::Tcp {
        authority,
        tls: Some(tls),
    } = &endpoint.transport
    else {
        panic!("TLS expected: {endpoint:?}")
    };
    // `docker`'s port for TLS when none is given.
    assert_eq!(authority, "10.0.0.5:2376");
    assert_eq!(tls.ca, config.0.join("ca.pem"));
    assert_eq!(tls.cert, config.0.join("cert.pem"));
    assert_eq!(tls.key, config.0.join("key.pem"));
    assert_eq!(endpoint.describe(), "tcp://10.0.0.5 (from --host, TLS)");

    let certs = ConfigDir::new();
    certs.write("ca.pem", "ca");
    let env = Environment {
        cert_path: Some(certs.0.clone()),
        ..env
    };
    let Transport::Tcp { tls: Some(tls), .. } = resolve(&env).unwrap().transport else {
        panic!("TLS expected")
    };
    assert_eq!(tls.ca, certs.0.join("ca.pem"));
}

#[test]
fn tls_without_a_ca_is_an_error_naming_the_file() {
    let config = ConfigDir::new();
    let env = Environment {
        host: Some("tcp://10.0.0.5:2376".into()),
        tls_verify: Some("1".into()),
        ..config.env()
    };
    let e = resolve(&env).unwrap_err();
    assert_eq!(e.endpoint, "tcp://10.0.0.5:2376 (from --host)");
    assert!(e.reason.contains("ca.pem does not exist"), "{}", e.reason);
    assert!(e.reason.contains("DOCKER_CERT_PATH"), "{}", e.reason);
}

#[test]
fn tls_verify_means_nothing_for_a_unix_socket() {
    let env = Environment {
        host: Some("unix:///run/docker.sock".into()),
        tls_verify: Some("1".into()),
        ..Default::default()
    };
    assert_eq!(resolve(&env).unwrap().transport, unix("/run/docker.sock"));
}

#[test]
fn a_context_with_tls_material_uses_it() {
    let config = ConfigDir::new();
    config.context("secure", "tcp://10.0.0.5:2376", false);
    let dir = format!("contexts/tls/{}/docker", context_id("secure"));
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        config.write(&format!("{dir}/{file}"), "pem");
    }
    let env = Environment {
        docker_context: Some("secure".into()),
        ..config.env()
    };
    let Transport::Tcp { tls: Some(tls), .. } = resolve(&env).unwrap().transport else {
        panic!("TLS expected")
    };
    assert_eq!(tls.ca, config.0.join(&dir).join("ca.pem"));
    assert_eq!(tls.key, config.0.join(&dir).join("key.pem"));
}

#[test]
fn a_context_that_skips_tls_verification_is_refused_with_the_fix() {
    let config = ConfigDir::new();
    config.context("lax", "tcp://10.0.0.5:2376", true);
    let env = Environment {
        docker_context: Some("lax".into()),
        ..config.env()
    };
    let e = resolve(&env).unwrap_err();
    assert!(e.reason.contains("skip-tls-verify"), "{}", e.reason);
    assert!(e.reason.contains("docker context update"), "{}", e.reason);
}

#[test]
fn ssh_endpoints_resolve_and_publish_on_the_remote_host() {
    let env = Environment {
        host: Some("ssh://ops@node-1.example".into()),
        ..Default::default()
    };
    let endpoint = resolve(&env).unwrap();
    assert_eq!(endpoint.transport, Transport::Ssh("ssh://ops@node-1.example".into()));
    assert_eq!(endpoint.published_host(), "node-1.example");
    let env = Environment {
        host: Some("ssh://node-2/".into()),
        ..Default::default()
    };
    assert_eq!(resolve(&env).unwrap().published_host(), "node-2");
}

#[test]
fn ssh_with_a_port_is_refused_with_the_ssh_config_that_does_it() {
    let env = Environment {
        host: Some("ssh://ops@10.0.0.7:2222".into()),
        ..Default::default()
    };
    let e = resolve(&env).unwrap_err();
    assert!(e.reason.contains("`HostName 10.0.0.7` / `Port 2222`"), "{}", e.reason);
    assert!(e.reason.contains("unix:///tmp/docker.sock"), "{}", e.reason);
}

#[test]
fn addresses_of_other_forms_are_refused_with_the_forms_that_work() {
    for host in [
        "docker.example:2375",
        "npipe:////./pipe/docker_engine",
        "tcp://",
        "ssh://",
    ] {
        let env = Environment {
            host: Some(host.into()),
            ..Default::default()
        };
        let e = resolve(&env).unwrap_err();
        assert!(e.endpoint.starts_with(host), "{host}: {e:?}");
        assert!(!e.reason.is_empty());
    }
}

#[test]
fn published_hosts_follow_the_endpoint() {
    let published = |host: &str| {
        let env = Environment {
            host: Some(host.into()),
            ..Default::default()
        };
        resolve(&env).unwrap().published_host()
    };
    assert_eq!(published("unix:///var/run/docker.sock"), "127.0.0.1");
    assert_eq!(published("tcp://10.0.0.5:2375"), "10.0.0.5");
    assert_eq!(published("tcp://[::1]:2375"), "::1");
    assert_eq!(published("http://10.0.0.6"), "10.0.0.6");
}
