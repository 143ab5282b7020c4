//! The examples and the operator docs cannot drift from the flags: every
//! `cl-maint …` command line in them is parsed with cl-maint's real
//! command-line definitions (no engine needed).
//!
//! Two kinds of occurrence:
//! - a **command line**: a line of a fenced code block in Markdown, or a line
//!   of a CI / systemd file (a YAML `run:` or list item, `ExecStart=`), whose
//!   command is `cl-maint` (or `…/cl-maint`). It must parse completely.
//! - a **mention**: an inline code span starting with `cl-maint ` in prose or
//!   in a comment. Its command and flags must exist and their values be valid,
//!   but required arguments may be left out (`cl-maint upgrade` names the
//!   command without a `--tag`).
//!
//! Shell variables (`$TAG`, `"${X}"`, GitHub's `${{ … }}`) stand for `x1`;
//! a command line ends at a shell operator (`|`, `>`, `&&`, `;`, `#`, …).

use std::path::{Path, PathBuf};

use clap::Parser;
use clap::error::ErrorKind;

/// Markdown documents checked besides everything under `examples/`.
const DOCS: [&str; 6] = [
    "README.md",
    "docs/operations.md",
    "docs/json.md",
    "docs/troubleshooting.md",
    "docs/manual-procedure.md",
    "docs/failover.md",
];

/// Example files checked (by extension), under `examples/`.
const EXAMPLE_EXTENSIONS: [&str; 6] = ["md", "yml", "yaml", "service", "timer", "toml"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A full command line.
    Line,
    /// An inline mention.
    Mention,
}

#[derive(Debug)]
struct Found {
    file: String,
    line: usize,
    kind: Kind,
    args: Vec<String>,
}

#[test]
fn every_cl_maint_command_in_the_examples_and_docs_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = DOCS.iter().map(|d| root.join(d)).collect();
    collect_examples(&root.join("examples"), &mut files);
    let mut failures = Vec::new();
    let mut total = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let file = path.strip_prefix(root).unwrap_or(path).display().to_string();
        let found = if file.ends_with(".md") {
            markdown(&file, &text)
        } else {
            config_file(&file, &text)
        };
        let commands = found.iter().filter(|f| f.kind == Kind::Line).count();
        assert!(
            !found.is_empty(),
            "{file}: no cl-maint command found; the extraction is broken or the file lost its examples"
        );
        if file == "docs/operations.md" {
            assert!(commands >= 15, "{file}: only {commands} command lines found");
        }
        total += found.len();
        for f in found {
            if let Err(why) = check(&f) {
                failures.push(format!("{}:{}: `{}`: {why}", f.file, f.line, f.args.join(" ")));
            }
        }
    }
    assert!(total >= 60, "only {total} cl-maint commands found in {files:?}");
    assert!(
        failures.is_empty(),
        "{} cl-maint command(s) in the docs/examples do not parse:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_extraction_sees_what_it_should() {
    let md = "Run `cl-maint\nupgrade --tag 2.10.0` now.\n\n```sh\nDOCKER_HOST=tcp://h:2376 cl-maint status --json > out.json  # note\n```\n";
    let found = markdown("x.md", md);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].kind, Kind::Line);
    assert_eq!(found[0].args, ["cl-maint", "status", "--json"]);
    assert_eq!(found[1].kind, Kind::Mention);
    assert_eq!(found[1].args, ["cl-maint", "upgrade", "--tag", "2.10.0"]);
    let yml = "      - run: cl-maint upgrade --tag \"${{ inputs.tag }}\" \\\n          --json 2>err.txt\n# `cl-maint failover back`\nExecStart=/usr/local/bin/cl-maint status -q\n";
    let found = config_file("x.yml", yml);
    let args: Vec<_> = found.iter().map(|f| f.args.join(" ")).collect();
    assert_eq!(
        args,
        [
            "cl-maint upgrade --tag x1 --json",
            "cl-maint status -q",
            "cl-maint failover back"
        ]
    );
    // A broken example is caught, and a mention may leave out required arguments.
    let bad = Found {
        file: "x".into(),
        line: 1,
        kind: Kind::Line,
        args: words("cl-maint upgrade --tag 2.10.0 --no-such-flag"),
    };
    assert!(check(&bad).is_err());
    let mention = Found {
        args: words("cl-maint upgrade"),
        kind: Kind::Mention,
        ..bad
    };
    assert!(check(&mention).is_ok());
    let line = Found {
        kind: Kind::Line,
        ..mention
    };
    assert!(check(&line).is_err(), "a command line must be complete");
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// Parses one occurrence with the real definitions.
fn check(f: &Found) -> Result<(), String> {
    match cl_maint::cli::Cli::try_parse_from(&f.args) {
        Ok(_) => Ok(()),
        Err(e) => match (e.kind(), f.kind) {
            (ErrorKind::DisplayHelp | ErrorKind::DisplayVersion, _) => Ok(()),
            (
                ErrorKind::MissingRequiredArgument | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
                Kind::Mention,
            ) => Ok(()),
            _ => Err(e.to_string().lines().next().unwrap_or_default().to_string()),
        },
    }
}

fn collect_examples(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_examples(&path, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXAMPLE_EXTENSIONS.contains(&e))
        {
            out.push(path);
        }
    }
}

/// Command lines in fenced blocks, and mentions in inline code spans.
fn markdown(file: &str, text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    let mut prose = String::new();
    let mut in_fence = false;
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            prose.push('\n');
            i += 1;
            continue;
        }
        if in_fence {
            let (joined, used) = join_continued(&lines[i..]);
            if let Some(args) = command_line(&joined) {
                found.push(Found {
                    file: file.into(),
                    line: i + 1,
                    kind: Kind::Line,
                    args,
                });
            }
            for _ in 0..used {
                prose.push('\n');
            }
            i += used;
            continue;
        }
        prose.push_str(line);
        prose.push('\n');
        i += 1;
    }
    found.extend(mentions(file, &prose));
    found
}

/// Command lines (YAML `run:` / list items, `ExecStart=`) and mentions in
/// code spans (comments, descriptions) of a CI, systemd or Prometheus file.
fn config_file(file: &str, text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let (joined, used) = join_continued(&lines[i..]);
        let mut rest = joined.trim_start();
        if !rest.starts_with('#') {
            rest = rest.strip_prefix("- ").unwrap_or(rest).trim_start();
            for prefix in ["run:", "script:", "ExecStart=", "ExecStartPre=", "ExecStartPost="] {
                if let Some(r) = rest.strip_prefix(prefix) {
                    rest = r.trim_start().trim_start_matches(['-', '+', '!', '@']);
                }
            }
            if let Some(args) = command_line(rest) {
                found.push(Found {
                    file: file.into(),
                    line: i + 1,
                    kind: Kind::Line,
                    args,
                });
            }
        }
        i += used;
    }
    found.extend(mentions(file, text));
    found
}

/// A line and the lines it continues onto with a trailing `\`; how many
/// lines that took.
fn join_continued(lines: &[&str]) -> (String, usize) {
    let mut joined = String::new();
    let mut used = 0;
    for line in lines {
        used += 1;
        match line.trim_end().strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
            }
            None => {
                joined.push_str(line);
                break;
            }
        }
    }
    (joined, used)
}

/// The arguments of a shell line whose command is cl-maint (after `$ `,
/// `sudo` and `NAME=value` assignments); `None` for any other line.
fn command_line(line: &str) -> Option<Vec<String>> {
    let line = line.trim_start();
    let line = line.strip_prefix("$ ").unwrap_or(line);
    let mut words = shell_words(line);
    while words
        .first()
        .is_some_and(|w| w == "sudo" || (w.contains('=') && !w.starts_with('-')))
    {
        words.remove(0);
    }
    let first = words.first()?;
    if first != "cl-maint" && !first.ends_with("/cl-maint") {
        return None;
    }
    words[0] = "cl-maint".into();
    Some(words)
}

/// Inline code spans (CommonMark: a run of N backticks up to the next run of
/// exactly N) that start with `cl-maint `, with their line numbers.
fn mentions(file: &str, text: &str) -> Vec<Found> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
        }
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let start = i + n;
        let mut j = start;
        let mut end = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    end = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        let Some(end) = end else {
            i = start;
            continue;
        };
        let span: String = chars[start..end].iter().collect();
        let span = span.replace('\n', " ");
        if span.trim().starts_with("cl-maint ") || span.trim() == "cl-maint" {
            found.push(Found {
                file: file.into(),
                line,
                kind: Kind::Mention,
                args: shell_words(span.trim()),
            });
        }
        line += chars[i..end].iter().filter(|c| **c == '\n').count();
        i = end + n;
    }
    found
}

/// Splits a shell line into words: quotes, backslashes, variables (as `x1`),
/// ending at the first shell operator or comment.
fn shell_words(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                i += 1;
            }
            '|' | ';' | '&' | '<' | '>' | '(' | ')' => {
                // `2>err`: the digits were a file descriptor, not a word.
                if in_word && !word.chars().all(|d| d.is_ascii_digit()) {
                    words.push(std::mem::take(&mut word));
                }
                return words;
            }
            '#' if !in_word => return words,
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '$' {
                        i = skip_variable(&chars, i);
                        word.push_str("x1");
                        continue;
                    }
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                in_word = true;
                i = skip_variable(&chars, i);
                word.push_str("x1");
            }
            '\\' => {
                in_word = true;
                if i + 1 < chars.len() {
                    word.push(chars[i + 1]);
                }
                i += 2;
            }
            _ => {
                in_word = true;
                word.push(c);
                i += 1;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Skips `$NAME`, `${NAME}` or `${{ expression }}` starting at `i`.
fn skip_variable(chars: &[char], i: usize) -> usize {
    let rest: String = chars[i..].iter().collect();
    let len = if rest.starts_with("${{") {
        rest.find("}}").map(|e| e + 2).unwrap_or(rest.len())
    } else if rest.starts_with("${") {
        rest.find('}').map(|e| e + 1).unwrap_or(rest.len())
    } else {
        1 + rest[1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count()
    };
    i + rest[..len].chars().count()
}
