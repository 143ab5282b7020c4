//! A real PostgreSQL server per test, for the lease era.
//!
//! **The image** (`cl-maint-rig-postgres:<hash>`) is built once per test
//! process (and at most once at a time across processes: a `flock` on
//! `target/cl-maint-rig/postgres-image.lock`) from Debian's `postgresql`
//! package on this machine, the highest version under `/usr/lib/postgresql`;
//! nothing is pulled. On the host, as user `postgres`, `initdb` makes a data
//! directory (trust auth, locale `C`, UTF-8), [`CONF`] is appended to its
//! `postgresql.conf`, [`HBA`] replaces its `pg_hba.conf`, and a single-user
//! `postgres --single` runs [`BOOTSTRAP`] (role and database `chainlink`).
//! A tar of the root file system follows: `postgres`, `psql` and `pg_isready`,
//! the package's `lib` (without the JIT and its bitcode) and `share` folders,
//! `/usr/share/zoneinfo`, every shared library `ldd` lists for them (the
//! loader included), `/etc/passwd` and `/etc/group` with the host's
//! `postgres` uid and gid, `/tmp` (mode 1777), and the data directory at
//! `/var/lib/postgresql/data` (mode 0700, owned by that uid in the tar
//! headers). The Engine API builds [`DOCKERFILE`] (`FROM scratch`, `ADD` of
//! that tar, which keeps its owners) from a tar context. The tag hashes the
//! server's `postgres --version` and every text above; an engine that has the
//! tag already is not asked to build it again.
//!
//! **The server**: [`Rig::database`] starts one per test on first use: a
//! bridge network `<rig id>-db` and the container `<rig id>-pg` on it, port
//! 5432 also published on `127.0.0.1`, both labelled with the rig's labels
//! (the rig's `Drop` removes them), and returns once the server's log says it
//! accepts connections.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{StartExecOptions, StartExecResults};
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
use super::{PID_LABEL, Rig, free_port, rig_dir};

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
WORKDIR /var/lib/postgresql
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["postgres"]
CMD ["-D", "/var/lib/postgresql/data"]
"#;

/// Appended to `postgresql.conf`: reachable on the network, the socket in
/// `/tmp`, and durability traded for speed.
pub const CONF: &str = "
# cl-maint test rig
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
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(prepare(&rig_dir()))
        })
        .join()
        .unwrap_or_else(|_| Err("building the PostgreSQL image panicked".to_string()))
    });
    match result {
        Ok(tag) => tag,
        Err(e) => panic!("test rig setup failed: {e}"),
    }
}

async fn prepare(rig_dir: &Path) -> Result<String, String> {
    let install = Install::find()?;
    let docker = super::connect().await?;
    sweep_stale_networks(&docker).await;
    let tag = install.tag()?;
    let _lock = FileLock::take(&rig_dir.join("postgres-image.lock"))?;
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(tag);
    }
    let context = install.context()?;
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("building {tag}: {e}"))?;
        if let Some(detail) = info.error_detail {
            return Err(format!("building {tag}: {}", detail.message.unwrap_or_default()));
        }
    }
    Ok(tag)
}

/// Removes db networks left by test processes that no longer exist (their
/// containers are swept when the rig starts).
async fn sweep_stale_networks(docker: &Docker) {
    let filters = HashMap::from([("label".to_string(), vec![PID_LABEL.to_string()])]);
    let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
    for n in docker.list_networks(Some(options)).await.unwrap_or_default() {
        let pid = n
            .labels
            .as_ref()
            .and_then(|l| l.get(PID_LABEL))
            .cloned()
            .unwrap_or_default();
        if !pid.is_empty() && !Path::new("/proc").join(&pid).exists() {
            let _ = docker.remove_network(n.id.as_deref().unwrap_or_default()).await;
        }
    }
}

/// Debian's PostgreSQL on this machine.
struct Install {
    version: String,
    bin: PathBuf,
}

impl Install {
    /// The highest version under `/usr/lib/postgresql` with every part the
    /// image needs.
    fn find() -> Result<Install, String> {
        let hint = "the PostgreSQL tests need Debian's `postgresql` package: run `apt-get install postgresql` (`bash .ci/run` installs it)";
        let mut versions: Vec<(Vec<u32>, String)> = std::fs::read_dir(PG_ROOT)
            .map_err(|e| format!("{hint} (cannot read {PG_ROOT}: {e})"))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|v| Some((v.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?, v)))
            .collect();
        versions.sort();
        let (_, version) = versions
            .pop()
            .ok_or_else(|| format!("{hint} (no version under {PG_ROOT})"))?;
        let bin = Path::new(PG_ROOT).join(&version).join("bin");
        let needed = ["postgres", "initdb", "psql", "pg_isready"].map(|b| bin.join(b));
        let share = PathBuf::from(format!("/usr/share/postgresql/{version}"));
        let zoneinfo = PathBuf::from("/usr/share/zoneinfo");
        for path in needed.iter().chain([&share, &zoneinfo]) {
            if !path.exists() {
                return Err(format!("{hint} ({} is missing)", path.display()));
            }
        }
        Ok(Install { version, bin })
    }

    fn dockerfile(&self) -> String {
        DOCKERFILE.replace("{v}", &self.version)
    }

    /// `cl-maint-rig-postgres:<hash of the server's version and the texts>`.
    fn tag(&self) -> Result<String, String> {
        let out = output(Command::new(self.bin.join("postgres")).arg("--version"))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (out.trim(), self.dockerfile(), CONF, HBA, BOOTSTRAP, LAYOUT).hash(&mut hasher);
        Ok(format!(
            "cl-maint-rig-postgres:{:012x}",
            hasher.finish() & 0xffff_ffff_ffff
        ))
    }

    /// The build context: the Dockerfile and `rootfs.tar`.
    fn context(&self) -> Result<Vec<u8>, String> {
        let rootfs = self.rootfs()?;
        let mut tar = tar::Builder::new(Vec::new());
        let mut append = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, data)
        };
        append("Dockerfile", self.dockerfile().as_bytes()).map_err(|e| e.to_string())?;
        append("rootfs.tar", &rootfs).map_err(|e| e.to_string())?;
        tar.into_inner().map_err(|e| e.to_string())
    }

    /// The image's whole file system, as a tar.
    fn rootfs(&self) -> Result<Vec<u8>, String> {
        let work = WorkDir::new()?;
        let (uid, gid) = work.owner;
        let data = self.initdb(&work)?;
        let v = &self.version;
        let lib = Path::new(PG_ROOT).join(v).join("lib");
        let mut fs = RootFs::new();
        let skip_jit = |p: &Path| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name == "bitcode" || name.starts_with("llvmjit")
        };
        let mut binaries = vec![];
        for b in ["postgres", "psql", "pg_isready"] {
            let path = self.bin.join(b);
            fs.file(&path, &format!("usr/lib/postgresql/{v}/bin/{b}"))?;
            binaries.push(path);
        }
        fs.tree(&lib, &format!("usr/lib/postgresql/{v}/lib"), &skip_jit)?;
        binaries.extend(
            walk(&lib, &skip_jit)?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "so")),
        );
        fs.tree(
            Path::new(&format!("/usr/share/postgresql/{v}")),
            &format!("usr/share/postgresql/{v}"),
            &|_| false,
        )?;
        fs.tree(Path::new("/usr/share/zoneinfo"), "usr/share/zoneinfo", &|_| false)?;
        for library in shared_libraries(&binaries)? {
            fs.file(&library, library.to_str().unwrap_or_default().trim_start_matches('/'))?;
        }
        let passwd = format!(
            "root:x:0:0:root:/root:/bin/false\npostgres:x:{uid}:{gid}:PostgreSQL administrator:/var/lib/postgresql:/bin/false\n"
        );
        fs.text("etc/passwd", &passwd)?;
        fs.text("etc/group", &format!("root:x:0:\npostgres:x:{gid}:\n"))?;
        fs.text("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")?;
        fs.dir("tmp", 0o1777, 0, 0)?;
        fs.dir("var/lib/postgresql", 0o755, uid, gid)?;
        fs.tree(&data, PGDATA.trim_start_matches('/'), &|_| false)?;
        fs.finish()
    }

    /// `initdb` and the bootstrap SQL, as the host's `postgres` user (or as
    /// this user when not root); returns the data directory.
    fn initdb(&self, work: &WorkDir) -> Result<PathBuf, String> {
        let data = work.path.join("data");
        let as_owner = |bin: &str| {
            let path = self.bin.join(bin);
            let mut cmd = if work.runuser {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            } else {
                Command::new(path)
            };
            cmd.current_dir(&work.path);
            cmd
        };
        output(as_owner("initdb").arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "--locale=C",
            "-E",
            "UTF8",
        ]))?;
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| format!("reading {}: {e}", conf.display()))?;
        text.push_str(CONF);
        std::fs::write(&conf, text).map_err(|e| format!("writing {}: {e}", conf.display()))?;
        let hba = data.join("pg_hba.conf");
        std::fs::write(&hba, HBA).map_err(|e| format!("writing {}: {e}", hba.display()))?;
        let mut single = as_owner("postgres");
        single.arg("--single").arg("-D").arg(&data).arg("postgres");
        let out = run_with_stdin(&mut single, BOOTSTRAP)?;
        if out.contains("ERROR") {
            return Err(format!("bootstrapping the database failed:\n{out}"));
        }
        Ok(data)
    }
}

/// A scratch directory owned by the user `initdb` runs as, removed on drop.
struct WorkDir {
    path: PathBuf,
    owner: (u32, u32),
    runuser: bool,
}

impl WorkDir {
    fn new() -> Result<WorkDir, String> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("clm-pg-initdb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        // SAFETY: plain libc calls; getpwnam's result is read at once.
        let (runuser, owner) = unsafe {
            if libc::geteuid() == 0 {
                let pw = libc::getpwnam(c"postgres".as_ptr());
                if pw.is_null() {
                    return Err("no user `postgres` on this machine: run `apt-get install postgresql`".into());
                }
                (true, ((*pw).pw_uid, (*pw).pw_gid))
            } else {
                (false, (libc::geteuid(), libc::getegid()))
            }
        };
        let work = WorkDir { path, owner, runuser };
        std::os::unix::fs::chown(&work.path, Some(owner.0), Some(owner.1)).map_err(|e| format!("chown: {e}"))?;
        std::fs::set_permissions(&work.path, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        Ok(work)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A tar of a root file system, each path once.
struct RootFs {
    tar: tar::Builder<Vec<u8>>,
    names: HashSet<String>,
}

impl RootFs {
    fn new() -> RootFs {
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        RootFs {
            tar,
            names: HashSet::new(),
        }
    }

    /// The file at `src` (symlinks resolved) as `name`.
    fn file(&mut self, src: &Path, name: &str) -> Result<(), String> {
        if self.names.insert(name.to_string()) {
            let real = src.canonicalize().map_err(|e| format!("{}: {e}", src.display()))?;
            let mut file = std::fs::File::open(&real).map_err(|e| format!("{}: {e}", real.display()))?;
            self.tar
                .append_file(name, &mut file)
                .map_err(|e| format!("adding {}: {e}", real.display()))?;
        }
        Ok(())
    }

    /// The tree at `src` as `name`, symlinks kept, owners and modes as on disk.
    fn tree(&mut self, src: &Path, name: &str, skip: &dyn Fn(&Path) -> bool) -> Result<(), String> {
        self.tar
            .append_path_with_name(src, name)
            .map_err(|e| format!("adding {}: {e}", src.display()))?;
        for path in walk(src, skip)? {
            let rel = path.strip_prefix(src).map_err(|e| e.to_string())?;
            let entry = format!("{name}/{}", rel.display());
            if self.names.insert(entry.clone()) {
                self.tar
                    .append_path_with_name(&path, &entry)
                    .map_err(|e| format!("adding {}: {e}", path.display()))?;
            }
        }
        Ok(())
    }

    fn text(&mut self, name: &str, text: &str) -> Result<(), String> {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.tar
            .append_data(&mut header, name, text.as_bytes())
            .map_err(|e| e.to_string())
    }

    fn dir(&mut self, name: &str, mode: u32, uid: u32, gid: u32) -> Result<(), String> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(mode);
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_cksum();
        self.tar
            .append_data(&mut header, name, std::io::empty())
            .map_err(|e| e.to_string())
    }

    fn finish(self) -> Result<Vec<u8>, String> {
        self.tar.into_inner().map_err(|e| e.to_string())
    }
}

/// Every path under `dir` (parents before children), without those `skip`
/// names and what is under them.
fn walk(dir: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>, String> {
    let mut found = vec![];
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if skip(&path) {
            continue;
        }
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        found.push(path.clone());
        if is_dir {
            found.extend(walk(&path, skip)?);
        }
    }
    Ok(found)
}

/// The shared libraries (and the loader) `ldd` lists for `binaries`.
fn shared_libraries(binaries: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd")
        .args(binaries)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    let mut libraries: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.starts_with('\t'))
        .filter_map(|line| {
            let path = line.split_once("=>").map_or(line, |(_, p)| p).trim();
            let path = path.split(" (").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    libraries.sort();
    libraries.dedup();
    if !libraries.iter().any(|l| l.to_string_lossy().contains("ld-linux")) {
        return Err(format!("ldd listed no loader for {}", binaries[0].display()));
    }
    Ok(libraries)
}

/// Runs `cmd`, returning its stdout or an error with its stderr.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with `input` on stdin; returns stdout and stderr.
fn run_with_stdin(cmd: &mut Command, input: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("{cmd:?} failed ({}):\n{text}", out.status));
    }
    Ok(text)
}

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
    docker: Docker,
}

type Servers = Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Postgres>>>>>;

impl Rig {
    /// This test's PostgreSQL server, started on the first call (later and
    /// concurrent calls get the same one).
    pub async fn database(&self) -> Arc<Postgres> {
        static SERVERS: OnceLock<Servers> = OnceLock::new();
        let cell = SERVERS
            .get_or_init(Default::default)
            .lock()
            .unwrap()
            .entry(self.id.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| async { Arc::new(Postgres::launch(self).await) })
            .await
            .clone()
    }
}

impl Postgres {
    async fn launch(rig: &Rig) -> Postgres {
        let image = image();
        let docker = rig.docker.clone();
        let network = format!("{}-db", rig.id);
        let container = format!("{}-pg", rig.id);
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                labels: Some(rig.labels()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("creating network {network}: {e}"));
        let host_port = free_port();
        let bindings = HashMap::from([(
            "5432/tcp".to_string(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host_port.to_string()),
            }]),
        )]);
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(rig.labels()),
            host_config: Some(HostConfig {
                network_mode: Some(network.clone()),
                port_bindings: Some(bindings),
                ..Default::default()
            }),
            ..Default::default()
        };
        docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(&container).build()),
                body,
            )
            .await
            .unwrap_or_else(|e| panic!("creating {container}: {e}"));
        let secret = std::collections::hash_map::RandomState::new().hash_one((&rig.id, Instant::now()));
        let pg = Postgres {
            container,
            network,
            host_port,
            password: format!("pg-secret-{secret:016x}"),
            docker,
        };
        pg.start().await;
        pg
    }

    /// `postgresql://chainlink:<password>@<container>:5432/chainlink?sslmode=disable`:
    /// the URL a node on [`Postgres::network`] uses.
    pub fn url(&self) -> String {
        format!(
            "postgresql://chainlink:{}@{}:5432/chainlink?sslmode=disable",
            self.password, self.container
        )
    }

    /// The same database through the published port on 127.0.0.1.
    pub fn host_url(&self) -> String {
        format!(
            "postgresql://chainlink:{}@127.0.0.1:{}/chainlink?sslmode=disable",
            self.password, self.host_port
        )
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
        let fail = |e: &dyn std::fmt::Display| -> ! { panic!("psql {sql:?} in {}: {e}", self.container) };
        let exec = self
            .docker
            .create_exec(&self.container, config)
            .await
            .unwrap_or_else(|e| fail(&e));
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let options = StartExecOptions {
            detach: false,
            ..Default::default()
        };
        match self.docker.start_exec(&exec.id, Some(options)).await {
            Ok(StartExecResults::Attached { mut output, .. }) => {
                while let Some(chunk) = output.next().await {
                    match chunk {
                        Ok(bollard::container::LogOutput::StdErr { message }) => {
                            stderr.push_str(&String::from_utf8_lossy(&message))
                        }
                        Ok(other) => stdout.push_str(&String::from_utf8_lossy(&other.into_bytes())),
                        Err(e) => fail(&e),
                    }
                }
            }
            Ok(StartExecResults::Detached) => fail(&"the exec detached"),
            Err(e) => fail(&e),
        }
        let code = self.docker.inspect_exec(&exec.id).await.map(|i| i.exit_code);
        match code {
            Ok(Some(0)) => stdout.trim().to_string(),
            other => fail(&format!("exit {other:?}: {stderr}")),
        }
    }

    /// `docker stop`: a fast shutdown (SIGINT), the data kept.
    pub async fn stop(&self) {
        self.docker
            .stop_container(&self.container, Some(StopContainerOptionsBuilder::new().t(10).build()))
            .await
            .unwrap_or_else(|e| panic!("stopping {}: {e}", self.container));
    }

    /// `docker start`, returning once the server accepts connections again.
    pub async fn start(&self) {
        let before = self.ready_lines().await;
        self.docker
            .start_container(&self.container, None)
            .await
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.container));
        let waited = tokio::time::timeout(START_WITHIN, async {
            let mut seen = 0;
            let options = LogsOptionsBuilder::new().stdout(true).stderr(true).follow(true).build();
            let mut stream = self.docker.logs(&self.container, Some(options));
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                while let Some(newline) = buffer.find('\n') {
                    let line: String = buffer.drain(..=newline).collect();
                    seen += usize::from(line.contains(READY));
                    if seen > before {
                        return true;
                    }
                }
            }
            false
        })
        .await;
        if waited != Ok(true) {
            panic!(
                "{} did not accept connections within {START_WITHIN:?}; its log:\n{}",
                self.container,
                self.log().await
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
        self.docker
            .disconnect_network(&self.network, request)
            .await
            .unwrap_or_else(|e| panic!("disconnecting {container} from {}: {e}", self.network));
    }

    /// `docker network connect`: `container` reaches the server as
    /// [`Postgres::container`].
    pub async fn connect(&self, container: &str) {
        let request = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: None,
        };
        self.docker
            .connect_network(&self.network, request)
            .await
            .unwrap_or_else(|e| panic!("connecting {container} to {}: {e}", self.network));
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
        let row = self
            .psql("SELECT client_id::text || '|' || (expires_at > NOW())::text FROM lease_lock LIMIT 1")
            .await;
        let (client, live) = row.split_once('|')?;
        Some((client.to_string(), live == "true"))
    }

    /// How many times the log says the server was ready.
    async fn ready_lines(&self) -> usize {
        self.log().await.matches(READY).count()
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
