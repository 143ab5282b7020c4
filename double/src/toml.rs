//! A small TOML reader: enough of the format for the node's `config.toml` and
//! `secrets.toml` as operators write them. It reads tables (`[WebServer]`,
//! dotted `[Database.Lock]`), arrays of tables (`[[EVM]]`, kept apart so
//! their keys never shadow the ones the double reads), bare and dotted keys,
//! single- and double-quoted strings (also triple-quoted, multi-line), integers,
//! booleans, comments and blank lines. Arrays, inline tables and floats are
//! skipped over (kept as their raw text); nothing the double reads uses them.

use std::collections::BTreeMap;

/// A value the double reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A quoted string.
    Str(String),
    /// An integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// Anything else (arrays, inline tables, floats, dates), as written.
    Raw(String),
}

/// A document's keys, flattened to dotted paths (`Database.Lock.Enabled`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Doc {
    /// Every key's value, by dotted path.
    pub keys: BTreeMap<String, Value>,
}

impl Doc {
    /// Parses `text`; a later document's keys override an earlier one's via
    /// [`Doc::merge`].
    pub fn parse(text: &str) -> Result<Doc, String> {
        let mut doc = Doc::default();
        let mut section = String::new();
        let mut aot: BTreeMap<String, usize> = BTreeMap::new();
        let mut lines = text.lines().enumerate();
        while let Some((n, raw)) = lines.next() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |e: String| format!("line {}: {e}", n + 1);
            if let Some(rest) = line.strip_prefix("[[") {
                let name = rest.split("]]").next().unwrap_or_default().trim();
                let index = aot.entry(name.to_string()).or_insert(0);
                section = format!("{name}[{index}]");
                *index += 1;
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let name = rest
                    .split(']')
                    .next()
                    .filter(|_| rest.contains(']'))
                    .ok_or_else(|| at("unterminated table header".into()))?;
                section = key_path(name).map_err(at)?;
                continue;
            }
            let (key, value) = split_key(line).ok_or_else(|| at(format!("expected `key = value`, found {line:?}")))?;
            let key = key_path(key).map_err(at)?;
            let mut value = value.trim_start().to_string();
            // Values that may span lines: read on until they are complete.
            while !complete(&value) {
                match lines.next() {
                    Some((_, more)) => {
                        value.push('\n');
                        value.push_str(more);
                    }
                    None => return Err(at("unterminated value".into())),
                }
            }
            let parsed = parse_value(&value).map_err(at)?;
            let path = if section.is_empty() {
                key
            } else {
                format!("{section}.{key}")
            };
            doc.keys.insert(path, parsed);
        }
        Ok(doc)
    }

    /// Applies `other` over `self` (its keys win).
    pub fn merge(&mut self, other: Doc) {
        self.keys.extend(other.keys);
    }

    /// A string value at `path`.
    pub fn str(&self, path: &str) -> Option<&str> {
        match self.keys.get(path)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.keys.get(path)
    }
}

/// Splits `key = value` at the first `=` outside quotes.
fn split_key(line: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '=') => return Some((line[..i].trim(), &line[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A (possibly dotted, possibly quoted) key as a dotted path.
fn key_path(key: &str) -> Result<String, String> {
    let parts: Vec<String> = key
        .split('.')
        .map(|p| p.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("invalid key {key:?}"));
    }
    Ok(parts.join("."))
}

/// Whether a value's text is complete (brackets closed, multi-line strings
/// ended).
fn complete(value: &str) -> bool {
    for q in ["'''", "\"\"\""] {
        if let Some(rest) = value.strip_prefix(q) {
            return rest.contains(q);
        }
    }
    if value.starts_with('[') || value.starts_with('{') {
        let mut depth = 0i32;
        let mut quote = None;
        for c in strip_comment_lines(value).chars() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), _) if c == q => quote = None,
                (None, '[' | '{') => depth += 1,
                (None, ']' | '}') => depth -= 1,
                _ => {}
            }
        }
        return depth <= 0;
    }
    true
}

/// Drops `#` comments from each line of a multi-line array (outside quotes).
fn strip_comment_lines(value: &str) -> String {
    value
        .lines()
        .map(|l| strip_comment(l).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text before a `#` comment that is outside quotes.
fn strip_comment(text: &str) -> &str {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') => return &text[..i],
            _ => {}
        }
    }
    text
}

fn parse_value(text: &str) -> Result<Value, String> {
    for q in ["'''", "\"\"\""] {
        if let Some(rest) = text.strip_prefix(q) {
            let end = rest.find(q).ok_or("unterminated string")?;
            let body = rest[..end].strip_prefix('\n').unwrap_or(&rest[..end]);
            return Ok(Value::Str(body.to_string()));
        }
    }
    if let Some(rest) = text.strip_prefix('\'') {
        let end = rest.find('\'').ok_or("unterminated string")?;
        return Ok(Value::Str(rest[..end].to_string()));
    }
    if let Some(rest) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(Value::Str(out)),
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or("invalid \\u escape")?;
                        out.push(c);
                    }
                    other => return Err(format!("invalid escape \\{}", other.unwrap_or(' '))),
                },
                c => out.push(c),
            }
        }
        return Err("unterminated string".into());
    }
    let bare = strip_comment(text).trim();
    if bare.is_empty() {
        return Err("missing value".into());
    }
    Ok(match bare {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match bare.replace('_', "").parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Raw(bare.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_keys_the_double_needs() {
        let doc = Doc::parse(
            r#"
# a comment
RootDir = '/chainlink' # trailing comment
ShutdownGracePeriod = "5s"

[WebServer]
HTTPPort = 6_687
ListenIP = '0.0.0.0'

[Database.Lock]
Enabled = false
LeaseDuration = '3s'

[Database]
Lock.LeaseRefreshInterval = "500ms"
URL = "postgresql://u:p@db:5432/cl?sslmode=disable" # secret

[[EVM]]
ChainID = '1'
Nodes = [
  { Name = 'a', WSURL = 'ws://x' }, # the first
  { Name = 'b', WSURL = 'ws://y' },
]

[[EVM]]
ChainID = '2'

[Log]
JSONConsole = true
Level = 'debug'
Note = '''
two
lines'''
"#,
        )
        .unwrap();
        assert_eq!(doc.str("RootDir"), Some("/chainlink"));
        assert_eq!(doc.str("ShutdownGracePeriod"), Some("5s"));
        assert_eq!(doc.get("WebServer.HTTPPort"), Some(&Value::Int(6687)));
        assert_eq!(doc.get("Database.Lock.Enabled"), Some(&Value::Bool(false)));
        assert_eq!(doc.str("Database.Lock.LeaseDuration"), Some("3s"));
        assert_eq!(doc.str("Database.Lock.LeaseRefreshInterval"), Some("500ms"));
        assert_eq!(
            doc.str("Database.URL"),
            Some("postgresql://u:p@db:5432/cl?sslmode=disable")
        );
        assert_eq!(doc.str("EVM[0].ChainID"), Some("1"));
        assert_eq!(doc.str("EVM[1].ChainID"), Some("2"));
        assert!(matches!(doc.get("EVM[0].Nodes"), Some(Value::Raw(_))));
        assert_eq!(doc.get("Log.JSONConsole"), Some(&Value::Bool(true)));
        assert_eq!(doc.str("Log.Level"), Some("debug"));
        assert_eq!(doc.str("Log.Note"), Some("two\nlines"));
    }

    #[test]
    fn later_documents_override_earlier_ones() {
        let mut doc = Doc::parse("[WebServer]\nHTTPPort = 1\nListenIP = 'a'").unwrap();
        doc.merge(Doc::parse("WebServer.HTTPPort = 2").unwrap());
        assert_eq!(doc.get("WebServer.HTTPPort"), Some(&Value::Int(2)));
        assert_eq!(doc.str("WebServer.ListenIP"), Some("a"));
    }

    #[test]
    fn escapes_and_errors() {
        let doc = Doc::parse(r#"a = "x\"y\\z\u0041""#).unwrap();
        assert_eq!(doc.str("a"), Some("x\"y\\zA"));
        assert!(Doc::parse("[Broken").is_err());
        assert!(Doc::parse("no equals sign").is_err());
        assert!(Doc::parse("a = 'unterminated").is_err());
        assert!(Doc::parse("a = [1, 2").is_err());
    }
}
