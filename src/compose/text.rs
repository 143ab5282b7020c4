//! Edits of a Compose file's text and of its `.env`, made line by line so
//! that the operator's formatting, comments and key order stay as they
//! were. Pure. Each edit is checked by parsing the file before and after
//! (see [`replace_image`]): only the one value may differ.

use serde_yaml::Value;

/// Where a service's `image:` value sits in a Compose file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpot {
    /// The line, counted from 0.
    pub line: usize,
    /// The value as written, without its quotes.
    pub value: String,
    /// Byte range of the value in its line, quotes included.
    range: (usize, usize),
    /// The quote around the value, if any.
    quote: Option<char>,
}

/// A key line of a block mapping: its indent and key.
fn key_line(line: &str) -> Option<(usize, String, usize)> {
    let body = line.trim_end_matches('\r');
    let indent = body.len() - body.trim_start_matches(' ').len();
    let rest = &body[indent..];
    if rest.is_empty() || rest.starts_with('#') || rest.starts_with("---") || rest.starts_with('-') {
        return None;
    }
    let (key, after) = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let end = rest[1..].find(q)? + 1;
            let after = rest[end + 1..].strip_prefix(':')?;
            (rest[1..end].to_string(), after)
        }
        _ => {
            let colon = rest.find(':')?;
            let after = &rest[colon + 1..];
            if !(after.is_empty() || after.starts_with(' ')) {
                return None;
            }
            (rest[..colon].trim_end().to_string(), after)
        }
    };
    Some((indent, key, body.len() - after.len()))
}

/// Whether `line` is blank or a comment (it ends no block).
fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The lines of the block under the key line `at` (indent `indent`): from
/// the next line up to the next key at that indent or less.
fn block(lines: &[&str], at: usize, indent: usize) -> std::ops::Range<usize> {
    let mut end = at + 1;
    for (i, l) in lines.iter().enumerate().skip(at + 1) {
        if is_blank(l) {
            continue;
        }
        let own = l.len() - l.trim_start_matches(' ').len();
        if own <= indent {
            break;
        }
        end = i + 1;
    }
    at + 1..end
}

/// The key line `key` directly inside `range` (at the indent of the
/// range's first key).
fn child(lines: &[&str], range: std::ops::Range<usize>, key: &str) -> Option<(usize, usize, usize)> {
    let mut indent = None;
    for i in range {
        let Some((own, k, after)) = key_line(lines[i]) else {
            continue;
        };
        let first = *indent.get_or_insert(own);
        if own == first && k == key {
            return Some((i, own, after));
        }
    }
    None
}

/// Finds the `image:` of `service`: under `services:`, or at the top level
/// in the old format without it. `None` when the file does not set it in
/// block style with a plain or simply quoted value (anchors, flow style and
/// block scalars are left to the operator).
pub fn find_image(text: &str, service: &str) -> Option<ImageSpot> {
    let lines: Vec<&str> = text.split('\n').collect();
    let all = 0..lines.len();
    let services = match child(&lines, all.clone(), "services") {
        Some((at, 0, _)) => block(&lines, at, 0),
        _ => all,
    };
    let (at, indent, _) = child(&lines, services, service)?;
    let (line, _, after) = child(&lines, block(&lines, at, indent), "image")?;
    let body = lines[line].trim_end_matches('\r');
    let start = after + (body.len() - after - body[after..].trim_start().len());
    let rest = &body[start..];
    let (value, len, quote) = match rest.chars().next()? {
        q @ ('"' | '\'') => {
            let end = rest[1..].find(q)? + 1;
            let value = &rest[1..end];
            if value.contains('\\') || rest[end + 1..].starts_with(q) {
                return None;
            }
            (value.to_string(), end + 1, Some(q))
        }
        '&' | '*' | '!' | '|' | '>' | '{' | '[' | '#' => return None,
        _ => {
            let end = rest.find(" #").unwrap_or(rest.len());
            let value = rest[..end].trim_end();
            (value.to_string(), value.len(), None)
        }
    };
    Some(ImageSpot {
        line,
        value,
        range: (start, start + len),
        quote,
    })
}

/// The service's `image:` as the parsed file gives it, when it sets one.
pub fn parsed_image(text: &str, service: &str) -> Result<Option<String>, String> {
    let doc: Value = serde_yaml::from_str(text).map_err(|e| format!("it is not valid YAML: {e}"))?;
    let services = doc.get("services").unwrap_or(&doc);
    Ok(services
        .get(service)
        .and_then(|s| s.get("image"))
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// `text` with `service`'s `image:` set to `value`, and nothing else
/// changed (checked by parsing both). `Err` says why it cannot be done.
pub fn replace_image(text: &str, service: &str, value: &str) -> Result<String, String> {
    let spot = find_image(text, service).ok_or_else(|| {
        format!("cl-maint edits only an `image:` written as a plain or quoted value in block style under the service `{service}`")
    })?;
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let quoted = match spot.quote {
        Some(q) => format!("{q}{value}{q}"),
        None => value.to_string(),
    };
    lines[spot.line].replace_range(spot.range.0..spot.range.1, &quoted);
    let after = lines.join("\n");
    let mut expected: Value = serde_yaml::from_str(text).map_err(|e| format!("it is not valid YAML: {e}"))?;
    let target = match expected.get_mut("services") {
        Some(s) => s,
        None => &mut expected,
    };
    if let Some(image) = target.get_mut(service).and_then(|s| s.get_mut("image")) {
        *image = Value::String(value.to_string());
    }
    let got: Value = serde_yaml::from_str(&after).map_err(|e| format!("the edit would break the file: {e}"))?;
    if got != expected {
        return Err("the edit would change more than the service's image".into());
    }
    Ok(after)
}

/// A value with one variable in it (`repo:${TAG}`, `${IMAGE:-repo:1.0}`):
/// the text around it, and the variable's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The text before the variable.
    pub prefix: String,
    /// The variable's name.
    pub var: String,
    /// The text after it.
    pub suffix: String,
}

/// The one variable `value` uses, if it uses exactly one; `Ok(None)` when
/// it uses none, `Err` when more than one or an unreadable form.
pub fn template(value: &str) -> Result<Option<Template>, String> {
    let mut found: Option<Template> = None;
    let mut literal = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            literal.push('$');
            rest = tail;
            continue;
        }
        let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
            let close = inner
                .find('}')
                .ok_or_else(|| format!("`{value}` has an unclosed `${{`"))?;
            let name_end = inner[..close]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(close);
            (&inner[..name_end], &inner[close + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            return Err(format!("`{value}` has a `$` cl-maint cannot read"));
        }
        if found.is_some() {
            return Err(format!("`{value}` uses more than one variable"));
        }
        found = Some(Template {
            prefix: std::mem::take(&mut literal),
            var: name.to_string(),
            suffix: String::new(),
        });
        rest = tail;
    }
    literal.push_str(rest);
    Ok(found.map(|t| Template { suffix: literal, ..t }))
}

impl Template {
    /// The variable's value that makes the template read `reference`.
    pub fn solve(&self, reference: &str) -> Option<String> {
        let middle = reference.strip_prefix(&self.prefix)?.strip_suffix(&self.suffix)?;
        (!middle.is_empty()).then(|| middle.to_string())
    }

    /// The template with the variable set to `value`.
    pub fn expand(&self, value: &str) -> String {
        format!("{}{value}{}", self.prefix, self.suffix)
    }
}

/// How many times `var` is used (`$VAR`, `${VAR}`, `${VAR:-…}`, …) in a
/// Compose file's text, outside comment lines.
pub fn uses_of(text: &str, var: &str) -> usize {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| {
            let mut n = 0;
            let mut rest = l;
            while let Some(at) = rest.find('$') {
                let after = &rest[at + 1..];
                // `$$` is a literal dollar.
                if let Some(tail) = after.strip_prefix('$') {
                    rest = tail;
                    continue;
                }
                let name = after.strip_prefix('{').unwrap_or(after);
                let end = name
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(name.len());
                if &name[..end] == var {
                    n += 1;
                }
                rest = after;
            }
            n
        })
        .sum()
}

/// The value of `var` in a `.env` text (the last line that sets it wins),
/// without its quotes.
pub fn env_value(text: &str, var: &str) -> Option<String> {
    text.lines().rev().find_map(|l| env_line(l, var)).map(|(v, _, _)| v)
}

/// `(value, value range, quote)` when `line` sets `var`.
fn env_line(line: &str, var: &str) -> Option<(String, (usize, usize), Option<char>)> {
    let body = line.trim_end_matches('\r');
    let lead = body.len() - body.trim_start().len();
    let mut rest = &body[lead..];
    let mut at = lead;
    if let Some(r) = rest.strip_prefix("export ") {
        at += rest.len() - r.len();
        rest = r;
    }
    let eq = rest.find('=')?;
    if rest[..eq].trim() != var {
        return None;
    }
    at += eq + 1;
    let value = &rest[eq + 1..];
    match value.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let end = value[1..].find(q)? + 1;
            Some((value[1..end].to_string(), (at, at + end + 1), Some(q)))
        }
        _ => {
            let end = value.find(" #").unwrap_or(value.len());
            let v = value[..end].trim_end();
            Some((v.to_string(), (at, at + v.len()), None))
        }
    }
}

/// `text` (a `.env`) with `var` set to `value`: its last line that sets it
/// is changed in place, quotes kept; or a line is added at the end.
pub fn set_env(text: &str, var: &str, value: &str) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    if let Some(i) = lines.iter().rposition(|l| env_line(l, var).is_some())
        && let Some((_, (from, to), quote)) = env_line(&lines[i], var)
    {
        let quoted = match quote {
            Some(q) => format!("{q}{value}{q}"),
            None => value.to_string(),
        };
        lines[i].replace_range(from..to, &quoted);
        return lines.join("\n");
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{var}={value}\n"));
    out
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
