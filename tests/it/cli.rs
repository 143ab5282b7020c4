//! The command line itself: help, version and usage errors, in process and as
//! the built binary.

use std::process::Command;

#[test]
fn version_and_help_succeed() {
    assert_eq!(cl_maint::run(["cl-maint", "--version"]), cl_maint::exit::OK);
    assert_eq!(cl_maint::run(["cl-maint", "--help"]), cl_maint::exit::OK);
    let out = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("cl-maint {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for (code, meaning) in cl_maint::exit::TABLE {
        assert!(
            text.contains(&format!("{code:>3}  {meaning}")),
            "help lists exit code {code}: {text}"
        );
    }
}

#[test]
fn unknown_arguments_are_usage_errors() {
    assert_eq!(cl_maint::run(["cl-maint", "--no-such-flag"]), cl_maint::exit::USAGE);
    let out = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(cl_maint::exit::USAGE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn completions_and_the_man_page_are_generated_from_the_definitions() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef cl-maint"),
        ("fish", "complete -c cl-maint"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        for word in ["upgrade", "failover", "status", "health", "secondary-host"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH cl-maint"), "{page}");
    for word in ["upgrade", "failover", "status", "health"] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(cl_maint::exit::USAGE));
}

/// With DOCKER_HOST set, the usage line does not show --host as if it were
/// required; each subcommand's help lists the global and the pair's flags
/// under headings of their own, apart from its own.
#[test]
fn usage_and_help_headings() {
    let out = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .arg("upgrade")
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(cl_maint::exit::USAGE));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage: cl-maint upgrade --tag <TAG>\n"), "{err}");
    let help = Command::new(env!("CARGO_BIN_EXE_cl-maint"))
        .args(["upgrade", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    let at = |heading: &str| text.find(heading).unwrap_or_else(|| panic!("{heading} in {text}"));
    let (own, pair, global) = (
        at("\nOptions:"),
        at("\nThe node and its pair:"),
        at("\nGlobal options:"),
    );
    assert!(own < pair && pair < global, "{text}");
    let section = |from: usize, to: usize| &text[from..to];
    assert!(
        section(own, pair).contains("--tag <TAG>") && !section(own, pair).contains("--host"),
        "{text}"
    );
    assert!(section(pair, global).contains("--secondary <SECONDARY>"), "{text}");
    assert!(section(global, text.len()).contains("--host <URL>"), "{text}");
    assert!(
        text.contains("[env: DOCKER_HOST]"),
        "the help still names DOCKER_HOST: {text}"
    );
}
