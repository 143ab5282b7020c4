//! A minimal PostgreSQL client (frontend/backend protocol v3, std only): what
//! the double needs to hold Chainlink's lease and keep its version in a real
//! database. It connects over TCP without TLS (`sslmode` is not negotiated),
//! authenticates with `trust`, a cleartext password or SCRAM-SHA-256 (the
//! default of PostgreSQL 14+ and of the `postgres` image; MD5 is not spoken),
//! and runs the simple
//! query protocol, returning each statement's rows as text and its command
//! tag. A server error comes back with its SQLSTATE and message, and the
//! connection stays usable; any I/O or protocol error leaves it unusable.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::scram::Scram;

/// Where and as whom to connect, from a `postgres://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The role to log in as.
    pub user: String,
    /// Its password (empty when none).
    pub password: String,
    /// A DNS name or an IP address.
    pub host: String,
    /// The TCP port (5432 by default).
    pub port: u16,
    /// The database (the user's name by default, as libpq does).
    pub dbname: String,
}

impl Url {
    /// Parses `postgresql://user:pass@host:port/dbname?params` (or
    /// `postgres://`). User and password are percent-decoded; query
    /// parameters (`sslmode=disable`, …) are accepted and ignored.
    pub fn parse(url: &str) -> Result<Url, String> {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or("database URL must start with postgresql:// or postgres://")?;
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((name, pass)) => (decode(name)?, decode(pass)?),
                None => (decode(u)?, String::new()),
            },
            None => (String::new(), String::new()),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unterminated [IPv6] host in database URL")?;
            (h.to_string(), after.strip_prefix(':').unwrap_or_default())
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err("database URL has no host".into());
        }
        let port = if port.is_empty() {
            5432
        } else {
            port.parse()
                .map_err(|_| format!("invalid port {port:?} in database URL"))?
        };
        let user = if user.is_empty() { "postgres".to_string() } else { user };
        let dbname = match decode(path)? {
            d if d.is_empty() => user.clone(),
            d => d,
        };
        Ok(Url {
            user,
            password,
            host,
            port,
            dbname,
        })
    }
}

/// Percent-decoding (`%40` → `@`).
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("invalid percent-encoding in {s:?}"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("invalid percent-encoding in {s:?}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("invalid UTF-8 in {s:?}"))
}

/// Why a request failed.
#[derive(Debug)]
pub enum Error {
    /// The network (connect, read, write, timeout): the connection is gone.
    Io(std::io::Error),
    /// The server answered with an error; the connection is still usable.
    Server {
        /// `ERROR`, `FATAL`, …
        severity: String,
        /// The SQLSTATE (`40P01`, `55P03`, …).
        code: String,
        /// The server's message.
        message: String,
    },
    /// Something the double does not speak (an authentication method, an
    /// unexpected message): the connection is unusable.
    Protocol(String),
}

impl Error {
    /// Whether the connection can still be used after this error.
    pub fn connection_usable(&self) -> bool {
        matches!(self, Error::Server { severity, .. } if severity != "FATAL" && severity != "PANIC")
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => write!(f, "i/o timeout ({e})"),
                std::io::ErrorKind::UnexpectedEof => f.write_str("the server closed the connection"),
                _ => write!(f, "{e}"),
            },
            Error::Server {
                severity,
                code,
                message,
            } => write!(f, "{severity}: {message} (SQLSTATE {code})"),
            Error::Protocol(m) => f.write_str(m),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// One statement's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Its rows, each column as text (`None` for NULL).
    pub rows: Vec<Vec<Option<String>>>,
    /// Its command tag (`INSERT 0 1`, `UPDATE 1`, `SELECT 2`, `CREATE TABLE`).
    pub tag: String,
}

impl Outcome {
    /// The affected-row count in the command tag (0 when it has none).
    pub fn affected(&self) -> u64 {
        self.tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

/// An open, authenticated connection.
pub struct Conn {
    stream: TcpStream,
}

impl Conn {
    /// Connects (each resolved address in turn, `connect_timeout` each),
    /// authenticates and waits until the server is ready for queries. Every
    /// later read and write times out after `io_timeout`.
    pub fn connect(
        url: &Url,
        application: &str,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<Conn, Error> {
        let addrs = (url.host.as_str(), url.port).to_socket_addrs()?;
        let mut last = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| {
            last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("{}: no address", url.host))
            })
        })?;
        stream.set_read_timeout(Some(io_timeout))?;
        stream.set_write_timeout(Some(io_timeout))?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn { stream };
        conn.startup(url, application)?;
        Ok(conn)
    }

    fn startup(&mut self, url: &Url, application: &str) -> Result<(), Error> {
        let mut scram = None;
        let mut body = 196_608i32.to_be_bytes().to_vec(); // protocol 3.0
        for (k, v) in [
            ("user", url.user.as_str()),
            ("database", url.dbname.as_str()),
            ("application_name", application),
        ] {
            cstring(&mut body, k);
            cstring(&mut body, v);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend(body);
        self.stream.write_all(&msg)?;
        loop {
            let (kind, body) = self.read_message()?;
            match kind {
                b'R' => {
                    let code = be_i32(&body, 0)?;
                    match code {
                        0 => {}
                        3 => {
                            let mut pass = Vec::new();
                            cstring(&mut pass, &url.password);
                            self.send(b'p', &pass)?;
                        }
                        10 => {
                            let offered = text_list(&body[4..]);
                            if !offered.iter().any(|m| m == "SCRAM-SHA-256") {
                                return Err(Error::Protocol(format!(
                                    "the server offers SASL mechanisms {offered:?}; cl-node-double speaks SCRAM-SHA-256 only"
                                )));
                            }
                            let exchange = Scram::new(&url.password);
                            let first = exchange.client_first();
                            let mut msg = Vec::new();
                            cstring(&mut msg, "SCRAM-SHA-256");
                            msg.extend((first.len() as i32).to_be_bytes());
                            msg.extend(first.as_bytes());
                            self.send(b'p', &msg)?;
                            scram = Some(exchange);
                        }
                        11 => {
                            let exchange = scram.as_mut().ok_or_else(|| unexpected(b'R'))?;
                            let server_first = String::from_utf8_lossy(&body[4..]).into_owned();
                            let last = exchange.client_final(&server_first).map_err(Error::Protocol)?;
                            self.send(b'p', last.as_bytes())?;
                        }
                        12 => {
                            let exchange = scram.as_ref().ok_or_else(|| unexpected(b'R'))?;
                            exchange
                                .verify(&String::from_utf8_lossy(&body[4..]))
                                .map_err(Error::Protocol)?;
                        }
                        other => return Err(Error::Protocol(unsupported_auth(other))),
                    }
                }
                b'E' => return Err(server_error(&body)),
                b'Z' => return Ok(()),
                // ParameterStatus, BackendKeyData, NoticeResponse.
                b'S' | b'K' | b'N' => {}
                other => return Err(unexpected(other)),
            }
        }
    }

    /// Runs `sql` (one or more statements separated by `;`, which the server
    /// runs as one transaction unless they say otherwise) with the simple
    /// query protocol. Returns each statement's outcome, or the server's
    /// first error (after which the connection is ready again).
    pub fn query(&mut self, sql: &str) -> Result<Vec<Outcome>, Error> {
        let mut body = Vec::with_capacity(sql.len() + 1);
        cstring(&mut body, sql);
        self.send(b'Q', &body)?;
        let mut outcomes = Vec::new();
        let mut current = Outcome::default();
        let mut failure = None;
        loop {
            let (kind, body) = self.read_message()?;
            match kind {
                b'T' => current.rows.clear(),
                b'D' => current.rows.push(data_row(&body)?),
                b'C' => {
                    current.tag = text(&body);
                    outcomes.push(std::mem::take(&mut current));
                }
                b'I' => outcomes.push(std::mem::take(&mut current)),
                b'E' => failure = Some(server_error(&body)),
                b'Z' => break,
                b'N' | b'S' | b'A' => {}
                other => return Err(unexpected(other)),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    }

    /// Says goodbye (Terminate) and closes the connection.
    pub fn close(mut self) {
        let _ = self.send(b'X', &[]);
    }

    fn send(&mut self, kind: u8, body: &[u8]) -> Result<(), Error> {
        let mut msg = Vec::with_capacity(body.len() + 5);
        msg.push(kind);
        msg.extend(((body.len() + 4) as i32).to_be_bytes());
        msg.extend_from_slice(body);
        self.stream.write_all(&msg)?;
        Ok(())
    }

    fn read_message(&mut self) -> Result<(u8, Vec<u8>), Error> {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head)?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if !(4..=64 * 1024 * 1024).contains(&len) {
            return Err(Error::Protocol(format!("invalid message length {len}")));
        }
        let mut body = vec![0u8; len as usize - 4];
        self.stream.read_exact(&mut body)?;
        Ok((head[0], body))
    }
}

fn unsupported_auth(code: i32) -> String {
    let name = match code {
        2 => "Kerberos V5",
        5 => "MD5 password",
        7 => "GSSAPI",
        9 => "SSPI",
        _ => "unknown",
    };
    format!(
        "the server asks for {name} authentication (code {code}), which cl-node-double does not speak: let it accept trust, cleartext password or scram-sha-256 authentication (pg_hba.conf `trust`, `password` or `scram-sha-256`, with password_encryption = scram-sha-256)"
    )
}

/// A list of C strings ended by an empty one.
fn text_list(body: &[u8]) -> Vec<String> {
    body.split(|b| *b == 0)
        .take_while(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn unexpected(kind: u8) -> Error {
    Error::Protocol(format!("unexpected message {:?} from the server", kind as char))
}

fn cstring(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn text(body: &[u8]) -> String {
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    String::from_utf8_lossy(&body[..end]).into_owned()
}

fn be_i32(body: &[u8], at: usize) -> Result<i32, Error> {
    body.get(at..at + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| Error::Protocol("short message".into()))
}

fn data_row(body: &[u8]) -> Result<Vec<Option<String>>, Error> {
    let short = || Error::Protocol("short DataRow".into());
    let count = u16::from_be_bytes([*body.first().ok_or_else(short)?, *body.get(1).ok_or_else(short)?]);
    let mut at = 2;
    let mut row = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = be_i32(body, at)?;
        at += 4;
        if len < 0 {
            row.push(None);
            continue;
        }
        let bytes = body.get(at..at + len as usize).ok_or_else(short)?;
        row.push(Some(String::from_utf8_lossy(bytes).into_owned()));
        at += len as usize;
    }
    Ok(row)
}

fn server_error(body: &[u8]) -> Error {
    let (mut severity, mut code, mut message) = (String::new(), String::new(), String::new());
    let mut rest = body;
    while let Some((&field, tail)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        let value = String::from_utf8_lossy(&tail[..end]).into_owned();
        match field {
            b'S' => severity = value,
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    Error::Server {
        severity,
        code,
        message,
    }
}

/// Quotes `s` as an SQL string literal (`'it''s'`).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("postgresql://cl%40ops:p%3Ass%2Fw@db-1:6543/chainlink?sslmode=disable").unwrap();
        assert_eq!(
            u,
            Url {
                user: "cl@ops".into(),
                password: "p:ss/w".into(),
                host: "db-1".into(),
                port: 6543,
                dbname: "chainlink".into()
            }
        );
        let u = Url::parse("postgres://postgres@localhost/cl").unwrap();
        assert_eq!((u.port, u.password.as_str(), u.dbname.as_str()), (5432, "", "cl"));
        let u = Url::parse("postgres://[::1]:5433/x").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.user.as_str()), ("::1", 5433, "postgres"));
        let u = Url::parse("postgresql://me@db").unwrap();
        assert_eq!(u.dbname, "me");
        assert!(Url::parse("mysql://db/x").is_err());
        assert!(Url::parse("postgres://u@:5432/x").is_err());
        assert!(Url::parse("postgres://u@db:port/x").is_err());
        assert!(Url::parse("postgres://u:%zz@db/x").is_err());
    }

    #[test]
    fn command_tags() {
        let tag = |t: &str| Outcome {
            rows: vec![],
            tag: t.into(),
        };
        assert_eq!(tag("INSERT 0 1").affected(), 1);
        assert_eq!(tag("INSERT 0 0").affected(), 0);
        assert_eq!(tag("UPDATE 3").affected(), 3);
        assert_eq!(tag("CREATE TABLE").affected(), 0);
    }

    #[test]
    fn server_errors_and_rows() {
        let mut body = Vec::new();
        for (f, v) in [(b'S', "ERROR"), (b'C', "55P03"), (b'M', "lock timeout")] {
            body.push(f);
            cstring(&mut body, v);
        }
        body.push(0);
        let e = server_error(&body);
        assert_eq!(e.to_string(), "ERROR: lock timeout (SQLSTATE 55P03)");
        assert!(e.connection_usable());
        let mut row = 2u16.to_be_bytes().to_vec();
        row.extend(2i32.to_be_bytes());
        row.extend(b"42");
        row.extend((-1i32).to_be_bytes());
        assert_eq!(data_row(&row).unwrap(), vec![Some("42".to_string()), None]);
        assert_eq!(literal("it's"), "'it''s'");
    }
}
