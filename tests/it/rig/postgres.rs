//! A real PostgreSQL server per test, for the lease era.
//!
//! **The image** `cl-maint-rig-postgres:<hash>` is built once per test process
//! (one process at a time: a `flock` on `target/cl-maint-rig/postgres-image.lock`)
//! from Debian's `postgresql` on this machine (the highest version under
//! `/usr/lib/postgresql`); nothing is pulled. As the host's `postgres` user,
//! `initdb` makes a data directory (trust, locale `C`, UTF-8); [`CONF`] is
//! appended to its `postgresql.conf`, [`HBA`] replaces its `pg_hba.conf`, and
//! `postgres --single` runs [`BOOTSTRAP`]. A tar of the root file system holds
//! `postgres`, `psql`, `pg_isready`, the package's `lib` (without the JIT) and
//! `share`, `/usr/share/zoneinfo`, every library `ldd` lists (and the loader),
//! `/etc/passwd` and `/etc/group` with that user's uid and gid, `/tmp` (1777)
//! and the data directory (0700, owned by that uid in the tar headers). The
//! Engine API builds [`DOCKERFILE`] (`FROM scratch`, `ADD` of that tar, owners
//! kept) from a tar context. The tag hashes `postgres --version` and these
//! texts; an engine that has the tag already is not asked again.
//!
//! **The server**: [`Rig::database`] starts one per test on first use: network
//! `<rig id>-db` and container `pg-<rig id>` on it (named so that listings of the test's `<rig id>-*` containers leave it out), 5432 also published on
//! 127.0.0.1, both with the rig's labels (the rig's `Drop` removes them), and
//! returns once the server's log says it accepts connections.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerCreateBody, ExecConfig, HostConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
    PortBinding,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, ListNetworksOptionsBuilder, LogsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures::StreamExt;

use super::images::FileLock;
use super::{PID_LABEL, free_port, rig_dir};

/// Where Debian installs PostgreSQL's versions.
const PG_ROOT: &str = "/usr/lib/postgresql";
/// The data directory in the image.
const PGDATA: &str = "/var/lib/postgresql/data";
/// What the server logs once it accepts connections.
const READY: &str = "database system is ready to accept connections";
/// How long a start may take on a busy machine (it takes about a second).
const START_WITHIN: Duration = Duration::from_secs(30);

/// The image's Dockerfile; `{v}` is the PostgreSQL major version.
pub const DOCKERFILE: &str = r#"FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/lib/postgresql/{v}/bin PGDATA=/var/lib/postgresql/data TZ=UTC
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["postgres"]
"#;

/// Appended to `postgresql.conf`: reachable on the network, the socket in
/// `/tmp`, and durability traded for speed.
pub const CONF: &str = "
listen_addresses = '*'
unix_socket_directories = '/tmp'
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
jit = off
timezone = 'UTC'
log_timezone = 'UTC'
";

/// `pg_hba.conf`: trust, for every user, locally and from anywhere.
pub const HBA: &str = "local all all trust
host all all 0.0.0.0/0 trust
host all all ::/0 trust
";

/// Run once at build time, in single-user mode.
pub const BOOTSTRAP: &str = "CREATE ROLE chainlink LOGIN SUPERUSER;
CREATE DATABASE chainlink OWNER chainlink;
";

/// Bumped when the image's layout changes in a way the texts above do not show.
const LAYOUT: u32 = 1;

/// The image's tag, built (or found on the engine) once per test process;
/// panics with what is missing when it cannot be.
pub fn image() -> &'static str {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let result = IMAGE.get_or_init(|| {
        // A thread and runtime of its own, like `images()`: the caller's
        // runtime may end before other tests use the result.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(prepare(&rig_dir()))
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow!("building the PostgreSQL image panicked")))
        .map_err(|e| format!("{e:#}"))
    });
    match result {
        Ok(tag) => tag,
        Err(e) => panic!("test rig setup failed: {e}"),
    }
}

/// Builds the server's image unless the engine has it; returns its tag.
pub async fn prepare(rig_dir: &Path) -> Result<String> {
    let install = Install::find()?;
    let docker = super::connect().await.map_err(|e| anyhow!(e))?;
    sweep_stale_networks(&docker).await;
    let tag = install.tag()?;
    let _lock = FileLock::take(&rig_dir.join("postgres-image.lock")).map_err(|e| anyhow!(e))?;
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let context = install.context()?;
    let options = BuildImageOptionsBuilder::new().t(&tag).rm(true).forcerm(true).build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        if let Some(detail) = item.with_context(|| format!("building {tag}"))?.error_detail {
            bail!("building {tag}: {}", detail.message.unwrap_or_default());
        }
    }
    Ok(tag)
}

/// Removes db networks left by test processes that no longer exist (the
/// rig sweeps their containers first).
async fn sweep_stale_networks(docker: &Docker) {
    let filters = HashMap::from([("label".to_string(), vec![PID_LABEL.to_string()])]);
    let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
    for n in docker.list_networks(Some(options)).await.unwrap_or_default() {
        let pid = n.labels.unwrap_or_default().remove(PID_LABEL).unwrap_or_default();
        if !pid.is_empty() && !Path::new("/proc").join(&pid).exists() {
            let _ = docker.remove_network(&n.id.unwrap_or_default()).await;
        }
    }
}

/// Debian's PostgreSQL on this machine.
struct Install {
    version: String,
    bin: PathBuf,
}

impl Install {
    /// The highest version under `/usr/lib/postgresql`, with every part the
    /// image needs.
    fn find() -> Result<Install> {
        let hint = "the PostgreSQL tests need Debian's `postgresql` package: run `apt-get install postgresql` (`bash .ci/run` installs it)";
        let dirs = std::fs::read_dir(PG_ROOT).into_iter().flatten().flatten();
        let names = dirs.filter_map(|e| e.file_name().into_string().ok());
        let highest = names.filter_map(|v| Some((v.parse::<u32>().ok()?, v))).max();
        let (_, version) = highest.ok_or_else(|| anyhow!("{hint} (no version under {PG_ROOT})"))?;
        let bin = Path::new(PG_ROOT).join(&version).join("bin");
        let share = PathBuf::from(format!("/usr/share/postgresql/{version}"));
        let needed = ["postgres", "initdb", "psql", "pg_isready"].map(|b| bin.join(b));
        for path in needed.iter().chain([&share, &PathBuf::from("/usr/share/zoneinfo")]) {
            ensure!(path.exists(), "{hint} ({} is missing)", path.display());
        }
        Ok(Install { version, bin })
    }

    fn dockerfile(&self) -> String {
        DOCKERFILE.replace("{v}", &self.version)
    }

    /// `cl-maint-rig-postgres:<hash of the server's version and the texts>`.
    fn tag(&self) -> Result<String> {
        let version = run(Command::new(self.bin.join("postgres")).arg("--version"), "")?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (version.trim(), self.dockerfile(), CONF, HBA, BOOTSTRAP, LAYOUT).hash(&mut hasher);
        let hash = hasher.finish() & 0xffff_ffff_ffff;
        Ok(format!("cl-maint-rig-postgres:{hash:012x}"))
    }

    /// The build context: the Dockerfile and `rootfs.tar`, made in a
    /// scratch directory that `postgres` owns.
    fn context(&self) -> Result<Vec<u8>> {
        let work = std::env::temp_dir().join(format!("clm-pg-initdb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let rootfs = self.rootfs(&work);
        let _ = std::fs::remove_dir_all(&work);
        let mut context = RootFs::new();
        context.entry("Dockerfile", Some(self.dockerfile().as_bytes()), 0o644, (0, 0))?;
        context.entry("rootfs.tar", Some(&rootfs?), 0o644, (0, 0))?;
        Ok(context.0.into_inner()?)
    }

    /// The image's whole file system, as a tar.
    fn rootfs(&self, work: &Path) -> Result<Vec<u8>> {
        let owner @ (uid, gid) = postgres_user()?;
        std::fs::create_dir_all(work)?;
        std::os::unix::fs::chown(work, Some(uid), Some(gid))?;
        let data = self.initdb(work)?;
        let (v, mut fs) = (&self.version, RootFs::new());
        let lib = Path::new(PG_ROOT).join(v).join("lib");
        let mut binaries = vec![];
        for b in ["postgres", "psql", "pg_isready"] {
            binaries.push(self.bin.join(b));
            fs.file(&self.bin.join(b), &format!("usr/lib/postgresql/{v}/bin/{b}"))?;
        }
        let so = |p: &PathBuf| p.extension() == Some("so".as_ref());
        binaries.extend(walk(&lib, &jit)?.into_iter().filter(so));
        fs.tree(&lib, &format!("usr/lib/postgresql/{v}/lib"), &jit)?;
        let share = format!("usr/share/postgresql/{v}");
        fs.tree(&Path::new("/").join(&share), &share, &|_| false)?;
        fs.tree(Path::new("/usr/share/zoneinfo"), "usr/share/zoneinfo", &|_| false)?;
        for library in shared_libraries(&binaries)? {
            fs.file(&library, library.to_string_lossy().trim_start_matches('/'))?;
        }
        let home = "/var/lib/postgresql:/bin/false";
        let passwd = format!("root:x:0:0::/root:/bin/false\npostgres:x:{uid}:{gid}::{home}\n");
        let group = format!("root:x:0:\npostgres:x:{gid}:\n");
        let nsswitch = "passwd: files\ngroup: files\nhosts: files dns\n".to_string();
        for (name, text) in [("passwd", passwd), ("group", group), ("nsswitch.conf", nsswitch)] {
            fs.entry(&format!("etc/{name}"), Some(text.as_bytes()), 0o644, (0, 0))?;
        }
        fs.entry("tmp", None, 0o1777, (0, 0))?;
        fs.entry("var/lib/postgresql", None, 0o755, owner)?;
        fs.tree(&data, PGDATA.trim_start_matches('/'), &|_| false)?;
        Ok(fs.0.into_inner()?)
    }

    /// `initdb` in `work`, the config, and the bootstrap SQL in single-user
    /// mode, as `postgres`; returns the data directory.
    fn initdb(&self, work: &Path) -> Result<PathBuf> {
        let data = work.join("data");
        let run_as_postgres = |bin: &str, args: String, input: &str| {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(self.bin.join(bin));
            run(cmd.args(args.split(' ')).current_dir(work), input)
        };
        let pgdata = data.display();
        let args = format!("-D {pgdata} -A trust -U postgres --no-sync --locale=C -E UTF8");
        run_as_postgres("initdb", args, "")?;
        let conf = data.join("postgresql.conf");
        let text = std::fs::read_to_string(&conf)? + CONF;
        std::fs::write(&conf, text)?;
        std::fs::write(data.join("pg_hba.conf"), HBA)?;
        let out = run_as_postgres("postgres", format!("--single -D {pgdata} postgres"), BOOTSTRAP)?;
        ensure!(!out.contains("ERROR"), "bootstrapping the database failed:\n{out}");
        Ok(data)
    }
}

/// The JIT's parts (left out: `jit = off`).
fn jit(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().as_bytes();
    name == b"bitcode" || name.starts_with(b"llvmjit")
}

/// The host's `postgres` user, who runs `initdb` (through `runuser`).
fn postgres_user() -> Result<(u32, u32)> {
    // SAFETY: plain libc calls; getpwnam's result is read at once.
    unsafe {
        ensure!(
            libc::geteuid() == 0,
            "building the PostgreSQL image needs root (to run initdb as postgres)"
        );
        let pw = libc::getpwnam(c"postgres".as_ptr());
        ensure!(!pw.is_null(), "no user `postgres`: run `apt-get install postgresql`");
        Ok(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// A tar, each path in it once.
struct RootFs(tar::Builder<Vec<u8>>, HashSet<String>);

impl RootFs {
    fn new() -> RootFs {
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        RootFs(tar, HashSet::new())
    }

    /// The file at `src` (symlinks resolved) as `name`.
    fn file(&mut self, src: &Path, name: &str) -> Result<()> {
        if self.1.insert(name.to_string()) {
            let mut file = std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
            self.0.append_file(name, &mut file)?;
        }
        Ok(())
    }

    /// The tree at `src` as `name`, symlinks kept, owners and modes as on disk.
    fn tree(&mut self, src: &Path, name: &str, skip: &dyn Fn(&Path) -> bool) -> Result<()> {
        self.0.append_path_with_name(src, name)?;
        for path in walk(src, skip)? {
            let entry = format!("{name}/{}", path.strip_prefix(src)?.display());
            if self.1.insert(entry.clone()) {
                self.0
                    .append_path_with_name(&path, &entry)
                    .with_context(|| format!("{}", path.display()))?;
            }
        }
        Ok(())
    }

    /// A file with `data` (a directory when `data` is `None`).
    fn entry(&mut self, name: &str, data: Option<&[u8]>, mode: u32, owner: (u32, u32)) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(data.map_or(tar::EntryType::Directory, |_| tar::EntryType::Regular));
        let data = data.unwrap_or_default();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(owner.0.into());
        header.set_gid(owner.1.into());
        header.set_cksum();
        Ok(self.0.append_data(&mut header, name, data)?)
    }
}

/// Every path under `dir` (parents first), but those `skip` names and what
/// is under them.
fn walk(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let mut found = vec![];
    for entry in entries.into_iter().filter(|e| !skip(&e.path())) {
        found.push(entry.path());
        if entry.file_type()?.is_dir() {
            found.extend(walk(&entry.path(), skip)?);
        }
    }
    Ok(found)
}

/// The shared libraries (and the loader) `ldd` lists for `binaries`.
fn shared_libraries(binaries: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").args(binaries).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `\tname => /path (0x…)`, `\t/loader (0x…)`; a file's own line is not indented.
    let deps = text.lines().filter(|l| l.starts_with('\t'));
    let paths = deps.filter_map(|l| l.split_whitespace().find(|t| t.starts_with('/')));
    let mut libraries: Vec<PathBuf> = paths.map(PathBuf::from).collect();
    libraries.sort();
    libraries.dedup();
    let loader = libraries.iter().any(|l| l.to_string_lossy().contains("/ld-linux"));
    ensure!(loader, "ldd listed no loader for {binaries:?}");
    Ok(libraries)
}

/// Runs `cmd` with `input` on stdin; returns its output (stdout and
/// stderr), or an error with it.
fn run(cmd: &mut Command, input: &str) -> Result<String> {
    use std::io::Write;
    let child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = child.spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    child.stdin.take().expect("piped stdin").write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    Ok(text)
}

/// The label of a test's database server; its value is the test's id.
pub const DB_LABEL: &str = "io.cl-maint.test-db";

/// One test's PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    /// The server container's name (its host name on [`Postgres::network`]).
    pub container: String,
    /// The bridge network nodes reach it on.
    pub network: String,
    /// The port on 127.0.0.1 where its 5432 is published.
    pub host_port: u16,
    /// The password in the URLs (trust auth ignores it; tests check it is
    /// never printed).
    pub password: String,
    /// `IP:PORT` where nodes on the second engine reach it (its bridge
    /// address), when that bridge existed at launch.
    pub second_address: Option<String>,
    docker: Docker,
}

/// Unwraps `result`, or panics saying what failed.
fn must<T, E: std::fmt::Display>(result: Result<T, E>, what: impl std::fmt::Display) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl Postgres {
    /// Starts a server: network `NAME-db` labelled `network_labels`,
    /// container `pg-NAME` labelled `labels`, 5432 published on 127.0.0.1
    /// and, when given, on `gateway` (where another engine's containers
    /// reach this machine). Returns once it accepts connections.
    pub async fn launch_named(
        docker: Docker,
        name: &str,
        network_labels: HashMap<String, String>,
        labels: HashMap<String, String>,
        gateway: Option<String>,
    ) -> Postgres {
        let image = image();
        let (network, container) = (format!("{name}-db"), format!("pg-{name}"));
        let request = NetworkCreateRequest {
            name: network.clone(),
            labels: Some(network_labels),
            ..Default::default()
        };
        let created = docker.create_network(request).await;
        must(created, format!("creating network {network}"));
        let host_port = free_port();
        let binding = PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(host_port.to_string()),
        };
        let mut bindings = vec![binding];
        let second_address = gateway.map(|ip| {
            let port = free_port();
            bindings.push(PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(port.to_string()),
            });
            format!("{ip}:{port}")
        });
        let host_config = HostConfig {
            network_mode: Some(network.clone()),
            port_bindings: Some(HashMap::from([("5432/tcp".to_string(), Some(bindings))])),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&container).build();
        let created = docker.create_container(Some(options), body).await;
        must(created, format!("creating {container}"));
        let secret = std::collections::hash_map::RandomState::new().hash_one((name, Instant::now()));
        let password = format!("pg-secret-{secret:016x}");
        let pg = Postgres {
            container,
            network,
            host_port,
            password,
            second_address,
            docker,
        };
        pg.start().await;
        pg
    }

    /// `postgresql://chainlink:<password>@<container>:5432/chainlink?sslmode=disable`:
    /// the URL a node on [`Postgres::network`] uses.
    pub fn url(&self) -> String {
        self.url_at(&format!("{}:5432", self.container))
    }

    /// The same database through the published port on 127.0.0.1.
    pub fn host_url(&self) -> String {
        self.url_at(&format!("127.0.0.1:{}", self.host_port))
    }

    /// The URL of the `chainlink` database through `address` (`host:port`).
    pub fn url_at(&self, address: &str) -> String {
        let password = &self.password;
        format!("postgresql://chainlink:{password}@{address}/chainlink?sslmode=disable")
    }

    /// Runs `sql` with `psql -Atc` as `postgres` on the server's socket, in
    /// database `chainlink`; returns stdout trimmed, panics with stderr when
    /// psql fails.
    pub async fn psql(&self, sql: &str) -> String {
        self.psql_at("host=/tmp user=postgres dbname=chainlink", sql).await
    }

    /// Like [`Postgres::psql`], connecting with `conninfo` (a URL such as
    /// [`Postgres::url`], resolved inside the server's container).
    pub async fn psql_at(&self, conninfo: &str, sql: &str) -> String {
        let cmd = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-Atc", sql];
        let config = ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.map(String::from).to_vec()),
            ..Default::default()
        };
        let what = format!("psql {sql:?} in {}", self.container);
        let exec = must(self.docker.create_exec(&self.container, config).await, &what);
        let StartExecResults::Attached { mut output, .. } = must(self.docker.start_exec(&exec.id, None).await, &what)
        else {
            panic!("{what}: the exec detached");
        };
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(chunk) = output.next().await {
            match must(chunk, &what) {
                LogOutput::StdErr { message } => stderr.push_str(&String::from_utf8_lossy(&message)),
                other => stdout.push_str(&String::from_utf8_lossy(&other.into_bytes())),
            }
        }
        match must(self.docker.inspect_exec(&exec.id).await, &what).exit_code {
            Some(0) => stdout.trim().to_string(),
            code => panic!("{what}: exit {code:?}: {stderr}"),
        }
    }

    /// `docker stop`: a fast shutdown (SIGINT), the data kept.
    pub async fn stop(&self) {
        let options = StopContainerOptionsBuilder::new().t(10).build();
        let stopped = self.docker.stop_container(&self.container, Some(options)).await;
        must(stopped, format!("stopping {}", self.container));
    }

    /// `docker start`, returning once the server accepts connections again
    /// (its log says so once more than before).
    pub async fn start(&self) {
        let before = self.log().await.matches(READY).count();
        let started = self.docker.start_container(&self.container, None).await;
        must(started, format!("starting {}", self.container));
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).follow(true).build();
        let mut stream = self.docker.logs(&self.container, Some(options));
        let (mut buffer, mut seen) = (String::new(), 0);
        let ready = tokio::time::timeout(START_WITHIN, async {
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                while let Some(newline) = buffer.find('\n') {
                    seen += usize::from(buffer.drain(..=newline).as_str().contains(READY));
                    if seen > before {
                        return true;
                    }
                }
            }
            false // the server exited
        });
        if ready.await != Ok(true) {
            let log = self.log().await;
            panic!(
                "{} did not accept connections within {START_WITHIN:?}; its log:\n{log}",
                self.container
            );
        }
    }

    /// Stops the server for `down`, then starts it and waits until it is ready.
    pub async fn stop_for(&self, down: Duration) {
        self.stop().await;
        tokio::time::sleep(down).await;
        self.start().await;
    }

    /// `docker network disconnect`: `container` loses its way to the server.
    pub async fn disconnect(&self, container: &str) {
        let request = NetworkDisconnectRequest {
            container: container.to_string(),
            force: Some(true),
        };
        let done = self.docker.disconnect_network(&self.network, request).await;
        must(done, format!("disconnecting {container} from {}", self.network));
    }

    /// `docker network connect`: `container` reaches the server as
    /// [`Postgres::container`] again.
    pub async fn connect(&self, container: &str) {
        let request = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: None,
        };
        let done = self.docker.connect_network(&self.network, request).await;
        must(done, format!("connecting {container} to {}", self.network));
    }

    /// The server's log so far.
    pub async fn log(&self) -> String {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        let mut stream = self.docker.logs(&self.container, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text
    }
}
