use super::*;

/// A project directory of the test's own, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("cl-maint-compose-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn service(&self, files: &[PathBuf]) -> Service {
        Service {
            project: "node".into(),
            service: "chainlink".into(),
            working_dir: Some(self.0.clone()),
            config_files: files.to_vec(),
            env_file: None,
            version: Some("1.29.2".into()),
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const OLD: &str = "r/chainlink:1.0.0";
const NEW: &str = "r/chainlink:1.1.0";

#[test]
fn the_file_that_sets_the_image_last_is_edited() {
    let d = Dir::new("override");
    let base = d.file(
        "docker-compose.yml",
        "services:\n  chainlink:\n    image: r/chainlink:0.9\n",
    );
    let over = d.file(
        "override.yml",
        "services:\n  chainlink:\n    image: r/chainlink:1.0.0 # prod\n",
    );
    let edit = prepare(&d.service(&[base, over.clone()]), OLD, NEW).unwrap();
    let change = edit.change.unwrap();
    assert_eq!(change.path, over);
    assert_eq!(
        change.after,
        "services:\n  chainlink:\n    image: r/chainlink:1.1.0 # prod\n"
    );
    assert!(
        edit.what.contains("`r/chainlink:1.0.0` → `r/chainlink:1.1.0`"),
        "{}",
        edit.what
    );
    write(&change).unwrap();
    assert_eq!(std::fs::read_to_string(&over).unwrap(), change.after);
}

#[test]
fn a_file_naming_the_target_already_needs_no_edit() {
    let d = Dir::new("already");
    let f = d.file(
        "docker-compose.yml",
        "services:\n  chainlink:\n    image: r/chainlink:1.1.0\n",
    );
    let edit = prepare(&d.service(&[f]), OLD, NEW).unwrap();
    assert_eq!(edit.change, None);
}

#[test]
fn an_unexpected_image_or_an_unreadable_file_is_refused_with_the_edit() {
    let d = Dir::new("drift");
    let f = d.file(
        "docker-compose.yml",
        "services:\n  chainlink:\n    image: r/chainlink:0.9\n",
    );
    let b = prepare(&d.service(std::slice::from_ref(&f)), OLD, NEW).unwrap_err();
    assert!(b.reason.contains("names `r/chainlink:0.9`"), "{}", b.reason);
    assert_eq!(b.kind, Kind::Drift);
    assert!(
        b.by_hand
            .contains("set the `image:` of service `chainlink` to `r/chainlink:1.1.0`")
    );
    let gone = d.0.join("elsewhere.yml");
    let b = prepare(&d.service(&[gone]), OLD, NEW).unwrap_err();
    assert!(b.reason.contains("cannot read"), "{}", b.reason);
    assert_eq!(b.kind, Kind::Unreadable);
    assert!(b.by_hand.contains("elsewhere.yml"));
    let f = d.file("flow.yml", "services:\n  chainlink: {image: r/chainlink:1.0.0}\n");
    let b = prepare(&d.service(&[f]), OLD, NEW).unwrap_err();
    assert!(b.reason.contains("block style"), "{}", b.reason);
}

#[test]
fn a_variable_is_set_in_the_env_file() {
    let d = Dir::new("dotenv");
    let f = d.file(
        "docker-compose.yml",
        "services:\n  chainlink:\n    image: r/chainlink:${CL_MAINT_TEST_TAG_A}\n",
    );
    let env = d.file(".env", "# the node\nCL_MAINT_TEST_TAG_A=1.0.0\nOTHER=1\n");
    let edit = prepare(&d.service(std::slice::from_ref(&f)), OLD, NEW).unwrap();
    assert_eq!(edit.var.as_deref(), Some("CL_MAINT_TEST_TAG_A"));
    let change = edit.change.unwrap();
    assert_eq!(change.path, env);
    assert_eq!(change.after, "# the node\nCL_MAINT_TEST_TAG_A=1.1.0\nOTHER=1\n");
    // The compose file itself is not touched.
    assert!(std::fs::read_to_string(&f).unwrap().contains("${CL_MAINT_TEST_TAG_A}"));
    // A file changed since it was read is left alone.
    std::fs::write(&env, "CL_MAINT_TEST_TAG_A=1.0.1\n").unwrap();
    assert!(write(&change).unwrap_err().contains("changed while cl-maint ran"));
}

#[test]
fn a_missing_env_file_is_created_and_a_variable_that_cannot_name_the_target_is_refused() {
    let d = Dir::new("noenv");
    let f = d.file(
        "docker-compose.yml",
        "services:\n  chainlink:\n    image: ${CL_MAINT_TEST_IMAGE_B}\n",
    );
    let change = prepare(&d.service(&[f]), OLD, NEW).unwrap().change.unwrap();
    assert_eq!(change.before, None);
    assert_eq!(change.after, "CL_MAINT_TEST_IMAGE_B=r/chainlink:1.1.0\n");
    let f = d.file(
        "other.yml",
        "services:\n  chainlink:\n    image: elsewhere/x:${CL_MAINT_TEST_TAG_C}\n",
    );
    let b = prepare(&d.service(&[f]), OLD, NEW).unwrap_err();
    assert!(b.reason.contains("cannot name"), "{}", b.reason);
}

#[test]
fn a_variable_other_services_use_too_is_refused() {
    let d = Dir::new("shared");
    let f = d.file(
        "docker-compose.yml",
        "services:\n  chainlink:\n    image: r/chainlink:${CL_MAINT_TEST_SHARED_D}\n  other:\n    image: r/chainlink:${CL_MAINT_TEST_SHARED_D}\n",
    );
    d.file(".env", "CL_MAINT_TEST_SHARED_D=1.0.0\n");
    let b = prepare(&d.service(&[f]), OLD, NEW).unwrap_err();
    assert_eq!(b.kind, Kind::Other);
    assert!(b.reason.contains("used in 2 places"), "{}", b.reason);
    assert!(b.by_hand.contains("CL_MAINT_TEST_SHARED_D=1.1.0"), "{}", b.by_hand);
}
