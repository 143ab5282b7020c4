//! Reading one file out of a container (`docker cp`): the engine answers
//! with a tar archive; the file is its first regular entry.

/// The contents of the first regular file in the tar archive `tar`, if any.
/// PAX and GNU extension headers before it are skipped.
pub fn first_file(tar: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let size = octal(&header[124..136])?;
        let data = at + 512;
        let end = data.checked_add(size)?;
        if end > tar.len() {
            return None;
        }
        // '0' or NUL: a regular file; 'x', 'g', 'L', 'K': extension headers.
        if matches!(header[156], b'0' | 0) {
            return Some(tar[data..end].to_vec());
        }
        at = data + size.div_ceil(512) * 512;
    }
    None
}

/// A tar header's octal number field.
fn octal(field: &[u8]) -> Option<usize> {
    let text: String = field.iter().take_while(|b| **b != 0).map(|b| *b as char).collect();
    usize::from_str_radix(text.trim(), 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: usize, kind: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h
    }

    fn entry(name: &str, data: &[u8], kind: u8) -> Vec<u8> {
        let mut e = header(name, data.len(), kind);
        e.extend_from_slice(data);
        e.resize(512 + data.len().div_ceil(512) * 512, 0);
        e
    }

    #[test]
    fn the_first_regular_file_after_extension_headers() {
        let mut tar = entry("PaxHeaders/secrets.toml", b"30 mtime=1700000000.123456789\n", b'x');
        tar.extend(entry("secrets.toml", b"[Database]\nURL = 'postgresql://x'\n", b'0'));
        tar.extend(vec![0u8; 1024]);
        assert_eq!(
            first_file(&tar).as_deref(),
            Some(&b"[Database]\nURL = 'postgresql://x'\n"[..])
        );
        assert_eq!(first_file(&[0u8; 1024]), None);
        assert_eq!(first_file(&tar[..600]), None, "a cut archive");
    }
}
