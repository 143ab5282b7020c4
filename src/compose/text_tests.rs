use super::*;

const FILE: &str = "\
# The node and its database.
version: \"3.8\"
services:
  postgres:
    image: postgres:15   # the database
  chainlink:
    # pinned on purpose
    image: 'localhost:5000/chainlink:1.0.0'  # bump with care
    restart: always
    environment:
      image: not-this-one
    ports:
      - \"127.0.0.1:6688:6688\"
volumes:
  data: {}
";

#[test]
fn the_services_image_is_found_and_nothing_else() {
    let spot = find_image(FILE, "chainlink").unwrap();
    assert_eq!(spot.line, 7);
    assert_eq!(spot.value, "localhost:5000/chainlink:1.0.0");
    assert_eq!(find_image(FILE, "postgres").unwrap().value, "postgres:15");
    assert_eq!(find_image(FILE, "missing"), None);
    assert_eq!(find_image(FILE, "data"), None);
}

#[test]
fn an_edit_keeps_comments_quotes_and_order() {
    let after = replace_image(FILE, "chainlink", "localhost:5000/chainlink:1.1.0").unwrap();
    let expected = FILE.replace(
        "'localhost:5000/chainlink:1.0.0'  # bump",
        "'localhost:5000/chainlink:1.1.0'  # bump",
    );
    assert_eq!(after, expected);
    let after = replace_image(FILE, "postgres", "postgres:16").unwrap();
    assert!(after.contains("    image: postgres:16   # the database\n"), "{after}");
}

#[test]
fn the_old_format_without_services_and_crlf_lines_work() {
    let old = "chainlink:\r\n  image: \"a/b:1\"\r\n  restart: always\r\n";
    let after = replace_image(old, "chainlink", "a/b:2").unwrap();
    assert_eq!(after, "chainlink:\r\n  image: \"a/b:2\"\r\n  restart: always\r\n");
}

#[test]
fn forms_cl_maint_does_not_edit_are_refused_not_mangled() {
    for text in [
        "services:\n  chainlink: {image: a/b:1}\n",
        "x: &img a/b:1\nservices:\n  chainlink:\n    image: *img\n",
        "services:\n  chainlink:\n    image: >\n      a/b:1\n",
        "services:\n  chainlink:\n    build: .\n",
    ] {
        assert!(replace_image(text, "chainlink", "a/b:2").is_err(), "{text}");
    }
}

#[test]
fn the_parsed_image_follows_yaml() {
    assert_eq!(
        parsed_image(FILE, "chainlink").unwrap().as_deref(),
        Some("localhost:5000/chainlink:1.0.0")
    );
    assert_eq!(parsed_image("services:\n  c:\n    build: .\n", "c").unwrap(), None);
    assert!(parsed_image("services: [\n", "c").is_err());
}

#[test]
fn templates_with_one_variable_are_solved() {
    let t = template("localhost:5000/chainlink:${CL_TAG}").unwrap().unwrap();
    assert_eq!(t.var, "CL_TAG");
    assert_eq!(t.solve("localhost:5000/chainlink:1.1.0").as_deref(), Some("1.1.0"));
    assert_eq!(t.solve("elsewhere/chainlink:1.1.0"), None);
    assert_eq!(t.expand("2.0.0"), "localhost:5000/chainlink:2.0.0");
    let t = template("${IMAGE:-a/b:1}").unwrap().unwrap();
    assert_eq!(
        (t.prefix.as_str(), t.var.as_str(), t.suffix.as_str()),
        ("", "IMAGE", "")
    );
    let t = template("$REPO:1.0.0").unwrap().unwrap();
    assert_eq!(t.var, "REPO");
    assert_eq!(t.suffix, ":1.0.0");
    assert_eq!(template("a/b:1").unwrap(), None);
    assert_eq!(template("a$$b").unwrap(), None);
    assert!(template("${REPO}:${TAG}").is_err());
    assert!(template("${TAG").is_err());
}

#[test]
fn dotenv_values_are_set_in_place_or_added() {
    let env = "# versions\nCL_TAG=1.0.0 # pinned\nexport OTHER=\"x\"\nCL_TAG='1.0.1'\n";
    assert_eq!(env_value(env, "CL_TAG").as_deref(), Some("1.0.1"));
    assert_eq!(env_value(env, "OTHER").as_deref(), Some("x"));
    assert_eq!(
        set_env(env, "CL_TAG", "1.1.0"),
        "# versions\nCL_TAG=1.0.0 # pinned\nexport OTHER=\"x\"\nCL_TAG='1.1.0'\n"
    );
    assert_eq!(set_env("A=1 # c\n", "A", "2"), "A=2 # c\n");
    assert_eq!(set_env("A=1", "B", "2"), "A=1\nB=2\n");
    assert_eq!(set_env("", "B", "2"), "B=2\n");
}

#[test]
fn uses_of_a_variable_are_counted_outside_comments() {
    let text = "# ${TAG} in a comment\nservices:\n  a:\n    image: r/a:${TAG}\n  b:\n    image: r/b:$TAG\n    command: echo $$TAG ${TAGS} ${TAG:-1}\n";
    assert_eq!(uses_of(text, "TAG"), 3);
    assert_eq!(uses_of(text, "TAGS"), 1);
    assert_eq!(uses_of(text, "OTHER"), 0);
}
