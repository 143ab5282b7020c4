//! The second image of the soak's back-and-forth: the double's `1.1.0` with
//! one more label, so the same version under another tag and digest.
//!
//! A real A→B→A between versions cannot be soaked: once 1.1.0 has held the
//! lock the database is migrated, and the node (the double as the real one)
//! refuses to start 1.0.0 on it. So the first upgrade is the real migration
//! 1.0.0 → 1.1.0, and every later one alternates between two images of
//! 1.1.0 that differ in id and digest: for cl-maint each is a new image
//! (nothing is skipped as up to date, no `--force`), for the node the same
//! version.

use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use futures::StreamExt;

use crate::{Bench, images, methods};

/// The variant's tag, in the double's repository.
pub const VARIANT: &str = "1.1.0-soak";

/// What the upgrades alternate between, and why, for the output.
pub const EXPLANATION: &str = "Upgrades: the first is the real migration 1.0.0 -> 1.1.0; after it they alternate \
     1.1.0 <-> 1.1.0-soak (the same version under another tag and digest), because the node refuses \
     to run 1.0.0 on a database 1.1.0 has migrated, so a real downgrade cannot be cycled.";

/// The next image of the back-and-forth after `current` (a tag).
pub fn next_after(current: &str) -> &'static str {
    if current == images::NEW { VARIANT } else { images::NEW }
}

/// Builds `FROM <repo>:1.1.0` plus a label as the variant and pushes it to
/// the registry, so that cl-maint pulls it for real like the other tags.
pub async fn prepare(bench: &Bench) -> Result<(), String> {
    methods::pull(&bench.docker, &bench.images, images::NEW).await?;
    let reference = bench.images.reference(VARIANT);
    let dockerfile = format!(
        "FROM {}\nLABEL io.cl-maint.soak.variant=\"{VARIANT}\"\n",
        bench.images.reference(images::NEW)
    );
    let context = {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
            .and_then(|()| tar.into_inner())
            .map_err(|e| format!("cannot make the build context of {reference}: {e}"))?
    };
    let options = BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&reference)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = bench
        .docker
        .build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("building {reference}: {e}"))?;
        if let Some(detail) = info.error_detail {
            return Err(format!("building {reference}: {}", detail.message.unwrap_or_default()));
        }
    }
    let options = PushImageOptionsBuilder::new().tag(VARIANT).build();
    let mut stream = bench.docker.push_image(&bench.images.repo, Some(options), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("pushing {reference}: {e}"))?;
        if let Some(detail) = info.error_detail {
            return Err(format!("pushing {reference}: {}", detail.message.unwrap_or_default()));
        }
    }
    Ok(())
}
