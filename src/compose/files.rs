//! Reading a Compose project's files and preparing the edit that makes it
//! name the new image; writing it once the node runs that image.

use std::path::{Path, PathBuf};

use super::Service;
use super::text;

/// One file's text before and after the edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    /// The file.
    pub path: PathBuf,
    /// Its text as read (`None`: it does not exist yet).
    pub before: Option<String>,
    /// Its text after the edit.
    pub after: String,
}

/// What an upgrade does to a Compose project so that Compose runs the new
/// image too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    /// The service.
    pub service: Service,
    /// The edit in words, which is also the edit to make by hand.
    pub what: String,
    /// The change to write; `None` when the files name the new image
    /// already.
    pub change: Option<FileChange>,
    /// The variable the service's image comes from, when it does.
    pub var: Option<String>,
}

/// Why the project cannot be brought along: what is wrong, and the edit to
/// make by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// What kind of obstacle it is.
    pub kind: Kind,
    /// What is wrong.
    pub reason: String,
    /// The exact edit to make by hand.
    pub by_hand: String,
}

/// What keeps cl-maint from editing a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Its files cannot be read from where cl-maint runs.
    Unreadable,
    /// It names another image than the container runs (and than the
    /// target): an edit cl-maint did not expect.
    Drift,
    /// Anything else: a form it does not edit, a file it cannot write, a
    /// variable shared or set in the shell.
    Other,
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {} from where cl-maint runs ({e})", path.display()))
}

fn writable(path: &Path) -> Result<(), String> {
    let open = if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path).map(drop)
    } else {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::metadata(dir).and_then(|m| {
            if m.permissions().readonly() {
                Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
            } else {
                Ok(())
            }
        })
    };
    open.map_err(|e| format!("cannot write {} ({e})", path.display()))
}

/// Prepares the edit that makes `service`'s project name `target` (the
/// container runs `running` now). Reads files only.
pub fn prepare(service: &Service, running: &str, target: &str) -> Result<Edit, Blocked> {
    let name = &service.service;
    let any_file = service
        .config_files
        .last()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "the project's Compose file".into());
    let blocked = |reason: String, by_hand: String| Blocked {
        kind: Kind::Other,
        reason,
        by_hand,
    };
    let unreadable = |reason: String, by_hand: String| Blocked {
        kind: Kind::Unreadable,
        reason,
        by_hand,
    };
    let drift = |reason: String, by_hand: String| Blocked {
        kind: Kind::Drift,
        reason,
        by_hand,
    };
    let by_hand_image = |file: &str| format!("in {file}, set the `image:` of service `{name}` to `{target}`");
    if service.config_files.is_empty() {
        return Err(blocked(
            format!("{}: its labels name no Compose file", service.describe()),
            by_hand_image(&any_file),
        ));
    }
    // The last file that sets the image wins, as Compose merges them.
    let mut found = None;
    let mut texts = Vec::new();
    for path in &service.config_files {
        let text = read(path).map_err(|r| unreadable(r, by_hand_image(&path.display().to_string())))?;
        let image = text::parsed_image(&text, name).map_err(|r| {
            blocked(
                format!("{}: {r}", path.display()),
                by_hand_image(&path.display().to_string()),
            )
        })?;
        if let Some(image) = image {
            found = Some((path.clone(), text.clone(), image));
        }
        texts.push(text);
    }
    let Some((path, text, image)) = found else {
        return Err(blocked(
            format!("no file of {} sets `image:` for the service", service.describe()),
            by_hand_image(&any_file),
        ));
    };
    let file = path.display().to_string();
    let template = text::template(&image).map_err(|r| blocked(format!("{file}: {r}"), by_hand_image(&file)))?;
    let Some(template) = template else {
        let what = format!("in {file}, the `image:` of service `{name}`: `{image}` → `{target}`");
        if image == target {
            return Ok(Edit {
                service: service.clone(),
                what: format!("{file} names `{target}` for service `{name}` already"),
                change: None,
                var: None,
            });
        }
        if image != running {
            return Err(drift(
                format!(
                    "{file} names `{image}` for service `{name}`, but the container runs `{running}`: cl-maint does not overwrite an edit it did not expect"
                ),
                by_hand_image(&file),
            ));
        }
        let after = text::replace_image(&text, name, target)
            .map_err(|r| blocked(format!("{file}: {r}"), by_hand_image(&file)))?;
        writable(&path).map_err(|r| blocked(r, by_hand_image(&file)))?;
        return Ok(Edit {
            service: service.clone(),
            what,
            change: Some(FileChange {
                path,
                before: Some(text),
                after,
            }),
            var: None,
        });
    };
    // The image comes from a variable: set it in the project's `.env`.
    let var = template.var.clone();
    let dotenv = service.dotenv().unwrap_or_else(|| PathBuf::from(".env"));
    let env_path = dotenv.display().to_string();
    let Some(value) = template.solve(target) else {
        return Err(blocked(
            format!("{file} gives service `{name}` the image `{image}`, which cannot name `{target}` by ${var} alone"),
            by_hand_image(&file),
        ));
    };
    let by_hand_var = format!("in {env_path}, set `{var}={value}`");
    let uses = texts.iter().map(|t| text::uses_of(t, &var)).sum::<usize>();
    if uses > 1 {
        return Err(blocked(
            format!(
                "${var} is used in {uses} places of the project's files, not only in the image of service `{name}`: setting it in {env_path} would change the others too, and Compose would recreate them without a handoff"
            ),
            format!(
                "{by_hand_var}, knowing that it changes the other places that use ${var}; or give service `{name}` a variable of its own"
            ),
        ));
    }
    let before = match std::fs::read_to_string(&dotenv) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(unreadable(format!("cannot read {env_path} ({e})"), by_hand_var)),
    };
    if let Some(set) = std::env::var_os(&var).filter(|v| v.to_str() != Some(value.as_str())) {
        return Err(blocked(
            format!(
                "{var} is set in cl-maint's environment (to {}), and Compose takes it over {env_path}: the next `up` from such a shell would bring the old image back",
                set.to_string_lossy()
            ),
            format!(
                "{by_hand_var}, and unset {var} in the shells and jobs that run Compose (or set it to {value} there)"
            ),
        ));
    }
    let current = before.as_deref().and_then(|t| text::env_value(t, &var));
    if let Some(current) = &current {
        let names = template.expand(current);
        if names == target {
            return Ok(Edit {
                service: service.clone(),
                what: format!("{env_path} sets `{var}={current}` already"),
                change: None,
                var: Some(var),
            });
        }
        if names != running {
            return Err(drift(
                format!(
                    "{env_path} sets `{var}={current}` (image `{names}`), but the container runs `{running}`: cl-maint does not overwrite an edit it did not expect"
                ),
                by_hand_var,
            ));
        }
    }
    writable(&dotenv).map_err(|r| blocked(r, by_hand_var.clone()))?;
    let after = text::set_env(before.as_deref().unwrap_or(""), &var, &value);
    Ok(Edit {
        service: service.clone(),
        what: format!(
            "in {env_path}, `{var}`: {} → `{value}` (the image of service `{name}` in {file} is `{image}`)",
            current.map_or_else(|| "not set".to_string(), |c| format!("`{c}`"))
        ),
        change: Some(FileChange {
            path: dotenv,
            before,
            after,
        }),
        var: Some(var),
    })
}

/// Writes the change, unless the file changed since it was read: `Err`
/// says why it was not written.
pub fn write(change: &FileChange) -> Result<(), String> {
    let now = match std::fs::read_to_string(&change.path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {} again ({e})", change.path.display())),
    };
    if now != change.before {
        return Err(format!(
            "{} changed while cl-maint ran; it was left as it is",
            change.path.display()
        ));
    }
    std::fs::write(&change.path, &change.after).map_err(|e| format!("cannot write {} ({e})", change.path.display()))
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
