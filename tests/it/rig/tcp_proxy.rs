//! The engine on a loopback TCP port: a proxy on `127.0.0.1:<free port>`
//! forwarding to the engine's unix socket, optionally terminating TLS with a
//! client certificate required (as `dockerd --tlsverify` does). Started per
//! test, stopped on drop; [`TcpProxy::cut`] and [`TcpProxy::stall`] make the
//! engine unreachable (live connections are dropped) until
//! [`TcpProxy::resume`].
//!
//! Also: [`cl_maint`], which runs the binary with a chosen environment
//! (endpoint variables, Docker config, `PATH`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, watch};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::Run;

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the engine.
    Forward,
    /// Accept and close at once (the engine "resets"); live connections are dropped.
    Refuse,
    /// Accept and never answer (the engine "hangs"); live connections are dropped.
    Stall,
}

/// Where the engine listens (the rig's own engine: `DOCKER_HOST` when it is
/// `unix://` or `tcp://`, else the default socket).
#[derive(Clone, Debug)]
enum Target {
    Unix(PathBuf),
    Tcp(String),
}

/// The rig's engine as an address (`unix:///var/run/docker.sock`, or `DOCKER_HOST`).
pub fn engine_host() -> String {
    match engine_target() {
        Target::Unix(path) => format!("unix://{}", path.display()),
        Target::Tcp(addr) => format!("tcp://{addr}"),
    }
}

fn engine_target() -> Target {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("tcp://") => Target::Tcp(h.trim_start_matches("tcp://").trim_end_matches('/').into()),
        Ok(h) if h.starts_with("unix://") => Target::Unix(h.trim_start_matches("unix://").into()),
        _ => Target::Unix("/var/run/docker.sock".into()),
    }
}

/// A running proxy; dropping it stops it and closes every connection.
pub struct TcpProxy {
    port: u16,
    mode: Arc<watch::Sender<Mode>>,
    accepted: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TcpProxy {
    /// Plain HTTP: `tcp://127.0.0.1:PORT` reaches the engine.
    pub fn start() -> TcpProxy {
        TcpProxy::spawn(None)
    }

    /// TLS with a client certificate signed by `certs`' CA required.
    pub fn start_tls(certs: &TlsCerts) -> TcpProxy {
        TcpProxy::spawn(Some(certs.acceptor()))
    }

    fn spawn(tls: Option<tokio_rustls::TlsAcceptor>) -> TcpProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for the proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("the proxy's port").port();
        let (mode, watching) = watch::channel(Mode::Forward);
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let counter = accepted.clone();
        let target = engine_target();
        // A thread and runtime of its own: test runtimes end before drop does.
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the proxy's runtime");
            rt.block_on(serve(listener, target, tls, watching, stopped, counter));
        });
        TcpProxy {
            port,
            mode: Arc::new(mode),
            accepted,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `tcp://127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Drops live connections and closes new ones at once, until [`TcpProxy::resume`].
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Refuse);
    }

    /// Drops live connections and leaves new ones unanswered, until [`TcpProxy::resume`].
    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    /// Forwards again.
    pub fn resume(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn serve(
    listener: std::net::TcpListener,
    target: Target,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mode: watch::Receiver<Mode>,
    mut stop: oneshot::Receiver<()>,
    accepted: Arc<AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("the proxy's listener");
    loop {
        tokio::select! {
            _ = &mut stop => return, // the runtime's end drops every connection
            next = listener.accept() => {
                let Ok((client, _)) = next else { continue };
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(connection(client, target.clone(), tls.clone(), mode.clone()));
            }
        }
    }
}

/// Waits until the mode is no longer [`Mode::Forward`].
async fn interrupted(mode: &mut watch::Receiver<Mode>) {
    while *mode.borrow_and_update() == Mode::Forward {
        if mode.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn connection(
    client: tokio::net::TcpStream,
    target: Target,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut mode: watch::Receiver<Mode>,
) {
    let now = *mode.borrow_and_update();
    match now {
        Mode::Refuse => return,
        Mode::Stall => {
            // Hold the connection, silent, until forwarding resumes (then close it).
            let _ = mode.wait_for(|m| *m == Mode::Forward).await;
            return;
        }
        Mode::Forward => {}
    }
    let work = async {
        let mut down: Box<dyn Io> = match tls {
            Some(acceptor) => Box::new(acceptor.accept(client).await.ok()?),
            None => Box::new(client),
        };
        let mut up: Box<dyn Io> = match &target {
            Target::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await.ok()?),
            Target::Tcp(addr) => Box::new(tokio::net::TcpStream::connect(addr).await.ok()?),
        };
        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
        Some(())
    };
    tokio::select! {
        _ = work => {}
        _ = interrupted(&mut mode) => {}
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made
/// with the `openssl` CLI. `client_dir()` is laid out as `DOCKER_CERT_PATH`
/// wants it (`ca.pem`, `cert.pem`, `key.pem`).
pub struct TlsCerts {
    dir: PathBuf,
}

impl TlsCerts {
    /// Makes the certificates under `dir` (created).
    pub fn generate(dir: &Path) -> TlsCerts {
        let client = dir.join("client");
        std::fs::create_dir_all(&client).expect("create the certificate directory");
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("write client.ext");
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(dir)
                .args(args)
                .output()
                .expect("the TLS test needs the openssl CLI (Debian package openssl)");
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ca = ["-CA", "client/ca.pem", "-CAkey", "ca-key.pem", "-days", "2"];
        let ca_out = [
            "-keyout",
            "ca-key.pem",
            "-out",
            "client/ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cl-maint test CA",
        ];
        openssl(&[&["req", "-x509"][..], &key, &ca_out].concat());
        openssl(
            &[
                &["req"][..],
                &key,
                &[
                    "-keyout",
                    "server-key.pem",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["x509", "-req", "-in", "server.csr", "-set_serial", "2"][..],
                &ca,
                &["-extfile", "server.ext", "-out", "server-cert.pem"],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &key,
                &[
                    "-keyout",
                    "client/key.pem",
                    "-out",
                    "client.csr",
                    "-subj",
                    "/CN=cl-maint client",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["x509", "-req", "-in", "client.csr", "-set_serial", "3"][..],
                &ca,
                &["-extfile", "client.ext", "-out", "client/cert.pem"],
            ]
            .concat(),
        );
        TlsCerts { dir: dir.to_path_buf() }
    }

    /// `ca.pem`, `cert.pem` and `key.pem` for the client.
    pub fn client_dir(&self) -> PathBuf {
        self.dir.join("client")
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let read_certs = |name: &str| -> Vec<CertificateDer<'static>> {
            CertificateDer::pem_file_iter(self.dir.join(name))
                .and_then(|certs| certs.collect())
                .unwrap_or_else(|e| panic!("reading {name}: {e}"))
        };
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_certs("client/ca.pem") {
            roots.add(ca).expect("the CA certificate");
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .expect("a client certificate verifier");
        let key = PrivateKeyDer::from_pem_file(self.dir.join("server-key.pem")).expect("the server key");
        let config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(read_certs("server-cert.pem"), key)
            .expect("the server's TLS configuration");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// Runs `cl-maint ARGS --json` with the test's environment: `DOCKER_CONTEXT`,
/// `DOCKER_CONFIG`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` removed (so a
/// developer's own settings do not leak in), `DOCKER_HOST` kept, then each
/// `(name, Some(value))` set and each `(name, None)` removed.
pub async fn cl_maint(args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cl-maint"));
    command
        .args(args)
        .arg("--json")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for name in [
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    Run::from_output(command.output().await.expect("run cl-maint"))
}
