//! A real SSH engine for a test: Debian's `sshd` on 127.0.0.1 (a port of
//! the test's own) with a throwaway host key and key pair, logging in as
//! the user the tests run as, who may use the engine. cl-maint reaches it
//! as `DOCKER_HOST=ssh://ALIAS`, through the system's `ssh` and an ssh
//! configuration of the test's own that names the alias, its port, key and
//! known hosts: the `ssh` on the `PATH` given to cl-maint is a two-line
//! wrapper that adds `-F` with that configuration, which is how an
//! operator's `~/.ssh/config` applies.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `sshd` and the client side to reach it; stopped (by its PID)
/// and removed when dropped.
pub struct Sshd {
    dir: PathBuf,
    child: Child,
    /// The host alias the client configuration defines.
    pub alias: String,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (this test needs Debian's openssh-server and openssh-client)"));
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

fn keygen(path: &std::path::Path) {
    run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(path),
        "ssh-keygen",
    );
}

impl Sshd {
    /// Starts one for test `id`.
    pub fn start(id: &str) -> Sshd {
        let dir = std::env::temp_dir().join(format!("{id}-ssh"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("id"));
        std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).unwrap();
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let port = super::free_port();
        let d = dir.display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd.pid\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nMaxStartups 100\nMaxSessions 100\n"
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("start /usr/sbin/sshd (Debian's openssh-server)");
        let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        std::fs::write(dir.join("known_hosts"), format!("[127.0.0.1]:{port} {host_key}")).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        let alias = format!("cl-maint-engine-{port}");
        let client = format!(
            "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {}\n  IdentityFile {d}/id\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            user.trim()
        );
        std::fs::write(dir.join("ssh_config"), client).unwrap();
        // The master connection the SSH transport keeps lives a few seconds
        // after its last use, not forever, so a test leaves none behind.
        let wrapper = format!("#!/bin/sh\nexec /usr/bin/ssh -F {d}/ssh_config -o ControlPersist=5 \"$@\"\n");
        let ssh = dir.join("bin/ssh");
        std::fs::write(&ssh, wrapper).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sshd = Sshd { dir, child, alias };
        sshd.wait_ready(port);
        sshd
    }

    /// Waits until sshd accepts connections (or says why it does not).
    fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "sshd did not listen on {port}: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `DOCKER_HOST` for the engine behind it.
    pub fn docker_host(&self) -> String {
        format!("ssh://{}", self.alias)
    }

    /// A `PATH` whose `ssh` uses the test's client configuration.
    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
