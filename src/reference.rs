//! Image references (`[registry[:port]/]path[:tag][@digest]`): the one place
//! that splits them.

/// The server Docker's config names Docker Hub by.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// `host[:port]/path` → (`Some("host[:port]")`, `path`); a reference without
/// an explicit registry → (`None`, reference). A first component counts as a
/// registry when it has a `.` or a `:`, or is `localhost`, as Docker decides.
pub fn split_domain(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, reference),
    }
}

/// `repo:tag` → (`repo`, `tag`), minding registry ports (`host:5000/repo`)
/// and dropping a digest; no tag means `latest`.
pub fn split(reference: &str) -> (&str, &str) {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// What to ask the engine to pull: (`repo`, `tag`), or (`repo`, `sha256:…`)
/// for a reference pinned by digest (`repo[:tag]@sha256:…`), which the engine
/// takes in the tag field.
pub fn pull_parts(reference: &str) -> (&str, &str) {
    match reference.split_once('@') {
        Some((name, digest)) => (split(name).0, digest),
        None => split(reference),
    }
}

/// The repository of a reference (`repo:tag` or `repo@sha256:…` → `repo`).
pub fn repository(reference: &str) -> &str {
    split(reference).0
}

/// The registry a reference pulls from, as the Docker config names it.
pub fn registry(reference: &str) -> String {
    split_domain(reference).0.unwrap_or(DOCKER_HUB).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn digest_references_pull_by_digest() {
        assert_eq!(
            super::pull_parts("127.0.0.1:5115/repo@sha256:abc"),
            ("127.0.0.1:5115/repo", "sha256:abc")
        );
        assert_eq!(super::pull_parts("repo:1.0@sha256:abc"), ("repo", "sha256:abc"));
        assert_eq!(super::pull_parts("host:5000/repo:2.1"), ("host:5000/repo", "2.1"));
    }

    use super::*;

    #[test]
    fn splits_with_registry_ports_and_digests() {
        assert_eq!(
            split("127.0.0.1:5000/chainlink:1.1.0"),
            ("127.0.0.1:5000/chainlink", "1.1.0")
        );
        assert_eq!(
            split("127.0.0.1:5000/chainlink"),
            ("127.0.0.1:5000/chainlink", "latest")
        );
        assert_eq!(
            split("smartcontract/chainlink:2.10.0"),
            ("smartcontract/chainlink", "2.10.0")
        );
        assert_eq!(repository("127.0.0.1:5000/chainlink:1.0.0"), "127.0.0.1:5000/chainlink");
        assert_eq!(
            repository("smartcontract/chainlink@sha256:abc"),
            "smartcontract/chainlink"
        );
        assert_eq!(repository("127.0.0.1:5000/chainlink"), "127.0.0.1:5000/chainlink");
    }

    #[test]
    fn registries() {
        assert_eq!(registry("smartcontract/chainlink:2.10.0"), DOCKER_HUB);
        assert_eq!(registry("public.ecr.aws/chainlink/chainlink:2.10.0"), "public.ecr.aws");
        assert_eq!(registry("127.0.0.1:5000/x:1"), "127.0.0.1:5000");
        assert_eq!(registry("localhost/x"), "localhost");
        assert_eq!(split_domain("chainlink"), (None, "chainlink"));
    }
}
