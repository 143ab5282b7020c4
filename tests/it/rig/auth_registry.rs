//! A registry that wants a password: a second Debian `docker-registry` with
//! htpasswd authentication on a free 127.0.0.1 port, one per test, stopped
//! (by its PID) and removed on drop, and killed by the kernel should the test
//! process die first. Its htpasswd file holds bcrypt hashes of each user's
//! password; [`PUSHER`] is the rig's own user, for pushing the double's images.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder};
use futures::StreamExt;

use cl_maint::probe;

use super::{Rig, free_port};

/// The rig's user (a plain password: pushes go through the rig's bollard client).
pub const PUSHER: (&str, &str) = ("clm-pusher", "pusher0pass");

/// A running registry with authentication; dropping it stops and removes it.
pub struct AuthRegistry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: PathBuf,
    child: Child,
    pushed: Vec<String>,
}

impl AuthRegistry {
    /// Starts one for `users` (`(name, password)`; [`PUSHER`] is added) in a
    /// directory of the test's `rig`.
    pub async fn start(rig: &Rig, users: &[(&str, &str)]) -> AuthRegistry {
        let binary = ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("the registry tests need Debian's docker-registry: `apt-get install docker-registry`");
        let dir = std::env::temp_dir().join(format!("{}-registry", rig.id));
        std::fs::create_dir_all(dir.join("data")).expect("create the registry's directory");
        let mut htpasswd = String::new();
        for (user, password) in users.iter().chain([&PUSHER]) {
            let hash = bcrypt::hash(password, 4).expect("bcrypt");
            htpasswd.push_str(&format!("{user}:{hash}\n"));
        }
        std::fs::write(dir.join("htpasswd"), htpasswd).expect("write htpasswd");
        let addr = format!("127.0.0.1:{}", free_port());
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n\
             http:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: cl-maint-test\n    path: {htpasswd}\n",
            data = dir.join("data").display(),
            htpasswd = dir.join("htpasswd").display(),
        );
        std::fs::write(dir.join("config.yml"), config).expect("write config.yml");
        let log = std::fs::File::create(dir.join("registry.log")).expect("create registry.log");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory: the
        // registry dies with the thread that started it (the test's).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("start docker-registry");
        let registry = AuthRegistry {
            addr,
            dir,
            child,
            pushed: Vec::new(),
        };
        // Up when /v2/ answers 401 (authentication wanted).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match probe::get(&registry.addr, "/v2/", None, Duration::from_secs(2)).await {
                Ok(a) if a.status == 401 => break,
                Ok(a) => panic!(
                    "the registry at {} answered {} to /v2/, not 401",
                    registry.addr, a.status
                ),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!(
                    "the registry at {} did not answer within 30 s ({e}); its log:\n{}",
                    registry.addr,
                    std::fs::read_to_string(registry.dir.join("registry.log")).unwrap_or_default()
                ),
            }
        }
        registry
    }

    /// The reference of `tag` of the double here (`127.0.0.1:PORT/cl-node-double:TAG`).
    pub fn reference(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repo())
    }

    fn repo(&self) -> String {
        format!("{}/cl-node-double", self.addr)
    }

    /// Copies `tag` of the double from the rig's registry into this one (as
    /// [`PUSHER`]). With `keep_local`, the engine keeps the tag (to start a
    /// node from it); otherwise it is removed so that a pull is a real one.
    pub async fn copy(&mut self, rig: &Rig, tag: &str, keep_local: bool) {
        rig.pull(tag).await;
        let options = TagImageOptionsBuilder::new().repo(&self.repo()).tag(tag).build();
        rig.docker
            .tag_image(&rig.images.reference(tag), Some(options))
            .await
            .unwrap_or_else(|e| panic!("tagging {tag} for {}: {e}", self.addr));
        let reference = self.reference(tag);
        self.pushed.push(reference.clone());
        let credentials = DockerCredentials {
            username: Some(PUSHER.0.into()),
            password: Some(PUSHER.1.into()),
            serveraddress: Some(self.addr.clone()),
            ..Default::default()
        };
        let docker = rig.docker.clone().with_request_modifier(base64url_auth);
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let mut stream = docker.push_image(&self.repo(), Some(options), Some(credentials));
        while let Some(item) = stream.next().await {
            let info = item.unwrap_or_else(|e| panic!("pushing {reference}: {e}"));
            if let Some(detail) = info.error_detail {
                panic!("pushing {reference}: {:?}", detail.message);
            }
        }
        if !keep_local {
            untag(&rig.docker, &reference).await;
        }
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

async fn untag(docker: &Docker, reference: &str) {
    let _ = docker
        .remove_image(
            reference,
            Some(RemoveImageOptionsBuilder::new().force(true).build()),
            None,
        )
        .await;
}

/// The engine decodes `X-Registry-Auth` as base64url; bollard sends standard
/// base64 (the same fix as cl-maint's, for the rig's own pushes).
fn base64url_auth(mut request: bollard::BollardRequest) -> bollard::BollardRequest {
    let headers = request.headers_mut();
    if let Some(value) = headers.get("X-Registry-Auth").and_then(|v| v.to_str().ok())
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(value)
        && let Ok(v) = base64::engine::general_purpose::URL_SAFE.encode(raw).parse()
    {
        headers.insert("X-Registry-Auth", v);
    }
    request
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pushed = std::mem::take(&mut self.pushed);
        // The test's runtime may be unwinding: untag on a runtime of our own.
        let untagging = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                let Ok(docker) = super::connect().await else { return };
                for reference in pushed {
                    untag(&docker, &reference).await;
                }
            });
        });
        let _ = untagging.join();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Docker config directory for one test (`DOCKER_CONFIG`), with a `bin/`
/// for credential helpers to put on `PATH`; removed on drop.
pub struct DockerConfigDir {
    /// The directory (`DOCKER_CONFIG`).
    pub path: PathBuf,
}

impl DockerConfigDir {
    /// An empty one.
    pub fn new() -> DockerConfigDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "clm-{}-docker-config-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(path.join("bin")).expect("create the Docker config directory");
        DockerConfigDir { path }
    }

    /// The directory as a string, for `DOCKER_CONFIG`.
    pub fn dir(&self) -> String {
        self.path.display().to_string()
    }

    /// Writes `config.json`.
    pub fn config(&self, json: serde_json::Value) {
        std::fs::write(self.path.join("config.json"), json.to_string()).expect("write config.json");
    }

    /// A context as `docker context create NAME --docker host=HOST` stores it;
    /// with `tls`, the `ca.pem`, `cert.pem` and `key.pem` of that directory too.
    pub fn context(&self, name: &str, host: &str, tls: Option<&Path>) {
        let id = cl_maint::engine::endpoint::context_id(name);
        let meta = self.path.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).expect("create the context's directory");
        let json = serde_json::json!({
            "Name": name,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}},
        });
        std::fs::write(meta.join("meta.json"), json.to_string()).expect("write meta.json");
        if let Some(from) = tls {
            let to = self.path.join("contexts/tls").join(&id).join("docker");
            std::fs::create_dir_all(&to).expect("create the context's TLS directory");
            for file in ["ca.pem", "cert.pem", "key.pem"] {
                std::fs::copy(from.join(file), to.join(file)).expect("copy TLS material");
            }
        }
    }

    /// Writes `bin/docker-credential-NAME`, a shell script.
    pub fn helper(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path.join("bin").join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write the credential helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod the helper");
    }

    /// `PATH` with this directory's `bin/` first.
    pub fn path_with_helpers(&self) -> String {
        format!(
            "{}:{}",
            self.path.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

impl Drop for DockerConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
