//! What an image or a container says of the node it runs: its reference,
//! digest and declared version.

/// The reference a container was created from.
pub fn reference_of(c: &bollard::models::ContainerInspectResponse) -> String {
    c.config
        .as_ref()
        .and_then(|c| c.image.clone())
        .unwrap_or_else(|| c.name.clone().unwrap_or_default().trim_start_matches('/').to_string())
}

/// The registry digest of `image` for the repository of `reference`.
pub fn digest_for(image: &bollard::models::ImageInspect, reference: &str) -> Option<String> {
    let repo = crate::reference::repository(reference);
    let digests = image.repo_digests.clone().unwrap_or_default();
    digests
        .iter()
        .find(|d| d.starts_with(&format!("{repo}@")))
        .or(digests.first())
        .cloned()
}

/// The version an image declares (OCI label or `CHAINLINK_VERSION`).
pub fn version_of_image(image: Option<&bollard::models::ImageInspect>) -> Option<String> {
    let config = image?.config.as_ref()?;
    let label = config
        .labels
        .as_ref()
        .and_then(|l| l.get("org.opencontainers.image.version"))
        .cloned();
    label.or_else(|| {
        config
            .env
            .iter()
            .flatten()
            .find_map(|e| e.strip_prefix("CHAINLINK_VERSION=").map(str::to_string))
    })
}
