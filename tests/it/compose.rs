//! Nodes run by the real `docker-compose` (Debian's 1.29): after cl-maint's
//! upgrade, `docker-compose up -d` leaves the node alone, and after an
//! unrelated edit of the file it recreates the node on the **new** image,
//! which takes the lock. Once for a single node whose file names the image,
//! once for a failover pair whose primary takes its image from `.env`.

use std::path::PathBuf;
use std::time::Duration;

use crate::failover::Pair;
use crate::rig::{NEW, Node, OLD, PID_LABEL, Rig, TEST_LABEL, free_port};
use crate::upgrade::{outcome, upgrade};

/// A Compose project of the test's own, in a directory removed at the end
/// (its container carries the rig's labels, so the rig removes it).
struct Project {
    dir: PathBuf,
    name: String,
    container: String,
    port: u16,
}

impl Project {
    /// Writes `docker-compose.yml` (image written as `image`) and `env`
    /// as `.env`, for a lease-era node on the rig's database.
    async fn new(rig: &Rig, image: &str, env: &str) -> Project {
        let db = rig.database().await;
        let dir = rig.dir.join("project");
        std::fs::create_dir_all(&dir).unwrap();
        let project = Project {
            name: rig.id.clone(),
            container: format!("{}-chainlink", rig.id),
            port: free_port(),
            dir,
        };
        let file = format!(
            "# The node, as an operator runs it.
version: \"3.8\"
services:
  chainlink:
    image: {image}   # pinned on purpose
    container_name: {container}
    restart: unless-stopped
    environment:
      CL_DOUBLE_LOCK: lease
      ROOT: /chainlink
      LEASE_LOCK_DURATION: 3s
      DATABASE_URL: \"{url}\"
    labels:
      {TEST_LABEL}: \"{id}\"
      {PID_LABEL}: \"{pid}\"
    ports:
      - \"127.0.0.1:{port}:6688\"
    volumes:
      - {volume}:/chainlink
    networks:
      - db
networks:
  db:
    external: true
    name: {network}
",
            container = project.container,
            url = db.url(),
            id = rig.id,
            pid = std::process::id(),
            port = project.port,
            volume = rig.dir.display(),
            network = db.network,
        );
        std::fs::write(project.file(), file).unwrap();
        std::fs::write(project.dir.join(".env"), env).unwrap();
        project
    }

    fn file(&self) -> PathBuf {
        self.dir.join("docker-compose.yml")
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.file()).unwrap()
    }

    /// `docker-compose -p NAME ARGS` in the project's directory: its output.
    async fn compose(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new("docker-compose")
            .args(["-p", &self.name])
            .args(args)
            .current_dir(&self.dir)
            .env_remove("DOCKER_HOST")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap_or_else(|e| panic!("docker-compose is needed for this test (Debian's `docker-compose`): {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "docker-compose {args:?}: {text}");
        text
    }

    /// The node as the rig knows nodes.
    async fn node(&self, rig: &Rig) -> Node {
        let c = rig.docker.inspect_container(&self.container, None).await.unwrap();
        Node {
            id: c.id.unwrap(),
            name: self.container.clone(),
            addr: format!("127.0.0.1:{}", self.port),
        }
    }

    /// The image reference the node's container runs.
    async fn image(&self, rig: &Rig) -> String {
        let c = rig.docker.inspect_container(&self.container, None).await.unwrap();
        c.config.unwrap().image.unwrap()
    }

    /// An edit that has nothing to do with the image: one more variable.
    fn unrelated_edit(&self) {
        let text = self.text().replace(
            "      ROOT: /chainlink\n",
            "      ROOT: /chainlink\n      CL_MAINT_TEST_EDIT: \"1\"\n",
        );
        std::fs::write(self.file(), text).unwrap();
    }
}

/// `up -d` right after the upgrade changes nothing; after an unrelated
/// edit it recreates the node on NEW. Returns the recreated node.
async fn compose_agrees(rig: &Rig, project: &Project, upgraded: &Node) -> Node {
    let said = project.compose(&["up", "-d"]).await;
    let after = project.node(rig).await;
    assert_eq!(after.id, upgraded.id, "up -d recreated the upgraded node: {said}");
    assert!(said.contains("up-to-date"), "{said}");
    project.unrelated_edit();
    let said = project.compose(&["up", "-d"]).await;
    let recreated = project.node(rig).await;
    assert_ne!(recreated.id, upgraded.id, "the edit did not recreate the node: {said}");
    assert_eq!(project.image(rig).await, rig.images.reference(NEW));
    recreated
}

#[tokio::test]
async fn a_compose_node_is_upgraded_with_its_file_and_labels() {
    let rig = Rig::new("compose-single").await;
    rig.pull(OLD).await;
    let project = Project::new(&rig, &rig.images.reference(OLD), "# nothing here\n").await;
    project.compose(&["up", "-d"]).await;
    let node = project.node(&rig).await;
    rig.wait_serving(&node, Duration::from_secs(30)).await;

    // The plan says what it will do to the project, and does nothing.
    let before = project.text();
    let dry = upgrade(&rig, &node.name, NEW, &["--dry-run"]).await;
    assert_eq!((dry.code, outcome(&dry)), (0, "dry-run"), "{dry:?}");
    let edit = dry.report["compose"]["edit"].as_str().unwrap_or_default().to_string();
    assert!(edit.contains(&rig.images.reference(NEW)), "{dry:?}");
    assert_eq!(dry.report["compose"]["written"], false);
    assert_eq!(project.text(), before);

    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(outcome(&run), "upgraded");
    let compose = &run.report["compose"];
    assert_eq!(compose["project"], rig.id.as_str(), "{run:?}");
    assert_eq!(compose["service"], "chainlink");
    assert_eq!(compose["written"], true, "{run:?}");
    assert_eq!(compose["labels_updated"], true, "{run:?}");
    // Only the image changed in the file; its comment is still there.
    let text = project.text();
    assert!(
        text.contains(&format!(
            "    image: {}   # pinned on purpose\n",
            rig.images.reference(NEW)
        )),
        "{text}"
    );
    // The standby never counted as the service's container.
    let upgraded = project.node(&rig).await;
    let recreated = compose_agrees(&rig, &project, &upgraded).await;
    rig.wait_serving(&recreated, Duration::from_secs(30)).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    let last = figures.tenures.last().expect("tenures");
    assert_eq!(last.version, NEW, "the node Compose recreated holds the lock");
}

#[tokio::test]
async fn a_compose_file_that_cannot_be_read_refuses_before_any_change() {
    let rig = Rig::new("compose-unreadable").await;
    rig.pull(OLD).await;
    let project = Project::new(&rig, &rig.images.reference(OLD), "").await;
    project.compose(&["up", "-d"]).await;
    let node = project.node(&rig).await;
    rig.wait_serving(&node, Duration::from_secs(30)).await;
    // The files are where the engine runs, not where cl-maint does.
    let away = rig.dir.join("project-away");
    std::fs::rename(&project.dir, &away).unwrap();
    let run = upgrade(&rig, &node.name, NEW, &[]).await;
    std::fs::rename(&away, &project.dir).unwrap();
    assert_eq!(run.code, 3, "{run:?}");
    let error = run.report["error"].as_str().unwrap();
    assert!(
        error.contains("run by Docker Compose") && error.contains("cannot read"),
        "{error}"
    );
    let next = run.report["next_steps"].to_string();
    assert!(
        next.contains(&format!(
            "set the `image:` of service `chainlink` to `{}`",
            rig.images.reference(NEW)
        )),
        "{next}"
    );
    assert_eq!(project.node(&rig).await.id, node.id, "nothing was changed");
    assert_eq!(project.image(&rig).await, rig.images.reference(OLD));

    // `--compose ignore` upgrades the container alone, and says so.
    let run = upgrade(&rig, &node.name, NEW, &["--compose", "ignore"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.report["compose"]["ignored"], true);
    assert!(
        run.report["warnings"].to_string().contains("--compose ignore"),
        "{run:?}"
    );
    assert!(
        project.text().contains(&rig.images.reference(OLD)),
        "the file was left alone"
    );
    // `status` says the project and the container disagree, and the edit.
    let pair = Pair::new(&rig, node);
    let st = pair.run(&rig, &["status"]).await;
    assert!(
        st.report["summary"].to_string().contains("does not name the image"),
        "{st:?}"
    );
    assert!(
        st.report["next_steps"]
            .to_string()
            .contains(&format!("to `{}`", rig.images.reference(NEW))),
        "{st:?}"
    );
}

#[tokio::test]
async fn a_pair_whose_primary_came_from_compose_is_upgraded_through_its_env_file() {
    let rig = Rig::new("compose-pair").await;
    rig.pull(OLD).await;
    let repository = rig
        .images
        .reference(OLD)
        .trim_end_matches(&format!(":{OLD}"))
        .to_string();
    let env = format!("# the node's version\nCL_TAG={OLD}\n");
    let project = Project::new(&rig, &format!("{repository}:${{CL_TAG}}"), &env).await;
    project.compose(&["up", "-d"]).await;
    let node = project.node(&rig).await;
    rig.wait_serving(&node, Duration::from_secs(30)).await;
    let pair = Pair::new(&rig, node);
    let up = pair.run(&rig, &["failover", "up"]).await;
    assert_eq!(up.code, 0, "{up:?}");
    // The secondary is not the service's container.
    let ps = project.compose(&["ps", "-q"]).await;
    assert_eq!(ps.lines().filter(|l| !l.trim().is_empty()).count(), 1, "{ps}");

    let run = pair.run(&rig, &["upgrade", "--tag", NEW]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(outcome(&run), "upgraded");
    assert_eq!(run.report["compose"]["written"], true, "{run:?}");
    let dotenv = std::fs::read_to_string(project.dir.join(".env")).unwrap();
    assert_eq!(dotenv, format!("# the node's version\nCL_TAG={NEW}\n"));
    assert!(project.text().contains("${CL_TAG}"), "the file itself is not touched");

    let upgraded = project.node(&rig).await;
    let recreated = compose_agrees(&rig, &project, &upgraded).await;
    // Compose's recreate stopped the holder: the secondary holds the lock,
    // the new primary waits; handing back gives it the lock.
    let pair = Pair {
        primary: recreated,
        ..pair
    };
    let back = pair.run(&rig, &["failover", "back", "--yes"]).await;
    assert_eq!(back.code, 0, "{back:?}");
    rig.wait_serving(&pair.primary, Duration::from_secs(30)).await;
    let figures = rig.journal();
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    assert_eq!(figures.tenures.last().unwrap().version, NEW);
}
