//! Moving files between containers through the archive API: `GET /containers/{id}/archive`
//! answers with a tar whose entries are named relative to the path's parent (`x` for
//! `/run/secrets/x`); `PUT /containers/{id}/archive?path=/` extracts a tar at the root and
//! creates missing parent directories, as it does for compose's own injected files. So the
//! entries are renamed to their full path (`run/secrets/x`) in between.
//!
//! Owns: the ustar/PAX header arithmetic for that renaming. Must not: do I/O, or touch file
//! contents, modes or owners.

/// One tar block.
const BLOCK: usize = 512;

/// Renames every entry of `tar` (as the archive API produces it) to `prefix/<name>`. `prefix`
/// is a relative directory path without a trailing slash (`run/secrets`); empty keeps the names.
pub(crate) fn rebase(tar: &[u8], prefix: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(tar.len() + BLOCK);
    let mut at = 0;
    while at + BLOCK <= tar.len() {
        let header = &tar[at..at + BLOCK];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let size = octal(&header[124..136])
            .ok_or_else(|| format!("a tar entry at byte {at} has an unreadable size"))?;
        let padded = size.div_ceil(BLOCK) * BLOCK;
        let data_end = at + BLOCK + padded;
        if data_end > tar.len() {
            return Err("the archive ends in the middle of an entry".to_owned());
        }
        let data = &tar[at + BLOCK..at + BLOCK + size];
        match header[156] {
            // PAX extended header for the next entry: its `path` record overrides the name.
            b'x' => {
                let records = rebase_pax_path(data, prefix)?;
                out.extend_from_slice(&pax_header(header, &records));
            }
            b'L' | b'K' => {
                return Err(
                    "the archive uses GNU long names, which pullpilot does not rewrite".to_owned(),
                );
            }
            // PAX global header: applies to the whole archive, names nothing.
            b'g' => out.extend_from_slice(&tar[at..data_end]),
            _ => {
                let name = full_name(header);
                let renamed = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                let mut header = header.to_vec();
                if !set_name(&mut header, &renamed) {
                    // Too long for ustar: a PAX header carries it; the ustar name is a stub.
                    let record = pax_record("path", &renamed);
                    let mut pax = [0u8; BLOCK];
                    pax[..5].copy_from_slice(b"PaxHd");
                    pax[100..108].copy_from_slice(b"0000644\0");
                    pax[257..263].copy_from_slice(b"ustar\0");
                    pax[263..265].copy_from_slice(b"00");
                    out.extend_from_slice(&pax_header(&pax, &record));
                    let stub = renamed
                        .rsplit('/')
                        .next()
                        .filter(|b| b.len() <= 100)
                        .unwrap_or("long-name");
                    set_name(&mut header, stub);
                }
                seal(&mut header);
                out.extend_from_slice(&header);
                out.extend_from_slice(&tar[at + BLOCK..data_end]);
            }
        }
        at = data_end;
    }
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    Ok(out)
}

/// Whether the archive's first entry (after PAX headers) is a regular file; `None` when the
/// archive holds no entry.
pub(crate) fn first_is_file(tar: &[u8]) -> Option<bool> {
    let mut at = 0;
    while at + BLOCK <= tar.len() {
        let header = &tar[at..at + BLOCK];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        match header[156] {
            b'x' | b'g' => {
                let size = octal(&header[124..136])?;
                at += BLOCK + size.div_ceil(BLOCK) * BLOCK;
            }
            kind => return Some(matches!(kind, b'0' | 0 | b'7')),
        }
    }
    None
}

/// The entry's name: ustar's prefix and name fields joined.
fn full_name(header: &[u8]) -> String {
    let field = |range: std::ops::Range<usize>| {
        let bytes = &header[range];
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let name = field(0..100);
    let is_ustar = &header[257..262] == b"ustar";
    let prefix = if is_ustar {
        field(345..500)
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// Writes `name` into the name (and, when needed, prefix) fields; false when it does not fit.
fn set_name(header: &mut [u8], name: &str) -> bool {
    let bytes = name.as_bytes();
    let (prefix, rest): (&[u8], &[u8]) = if bytes.len() <= 100 {
        (&[], bytes)
    } else {
        // Split at a slash so that the prefix fits 155 bytes and the rest 100.
        let Some(cut) = (0..bytes.len())
            .rev()
            .find(|i| bytes[*i] == b'/' && *i <= 155 && bytes.len() - i - 1 <= 100)
        else {
            return false;
        };
        (&bytes[..cut], &bytes[cut + 1..])
    };
    if !prefix.is_empty() && &header[257..262] != b"ustar" {
        return false;
    }
    header[0..100].fill(0);
    header[..rest.len()].copy_from_slice(rest);
    if &header[257..262] == b"ustar" {
        header[345..500].fill(0);
        header[345..345 + prefix.len()].copy_from_slice(prefix);
    }
    true
}

/// A PAX header block (type `x`) carrying `records`, padded to whole blocks.
fn pax_header(template: &[u8], records: &[u8]) -> Vec<u8> {
    let mut header = template[..BLOCK].to_vec();
    header[156] = b'x';
    header[124..136].copy_from_slice(format!("{:011o}\0", records.len()).as_bytes());
    seal(&mut header);
    let mut out = header;
    out.extend_from_slice(records);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

/// PAX records with the `path` record (if any) renamed under `prefix`.
fn rebase_pax_path(data: &[u8], prefix: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(data.len() + prefix.len() + 2);
    let mut rest = data;
    while !rest.is_empty() {
        let bad = || "the archive has a malformed PAX header".to_owned();
        let space = rest.iter().position(|b| *b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > space && *n <= rest.len())
            .ok_or_else(bad)?;
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").ok_or_else(bad)?;
        match record.strip_prefix(b"path=") {
            Some(path) if !prefix.is_empty() => {
                let path = String::from_utf8_lossy(path);
                out.extend_from_slice(&pax_record("path", &format!("{prefix}/{path}")));
            }
            _ => out.extend_from_slice(&rest[..len]),
        }
        rest = &rest[len..];
    }
    Ok(out)
}

/// One PAX record: `<length> <key>=<value>\n`, the length counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

/// Recomputes the header checksum (the field itself counted as spaces).
fn seal(header: &mut [u8]) {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// An octal numeric field (NUL- or space-terminated); `None` for base-256 or garbage.
fn octal(field: &[u8]) -> Option<usize> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| char::from(*b))
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    usize::from_str_radix(text, 8).ok()
}

/// A one-file ustar archive, as `docker cp` would send it (tests only).
#[cfg(test)]
pub(crate) fn one_file(name: &str, content: &[u8], mode: u32) -> Vec<u8> {
    let mut header = [0u8; BLOCK];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    seal(&mut header);
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    out
}

/// `(name, mode, content)` of every regular entry, PAX paths applied (tests only).
#[cfg(test)]
pub(crate) fn entries(tar: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let mut all = Vec::new();
    let mut at = 0;
    let mut pax_path = None;
    while at + BLOCK <= tar.len() && tar[at..at + BLOCK].iter().any(|b| *b != 0) {
        let header = &tar[at..at + BLOCK];
        let mut check = header.to_vec();
        let stored = octal(&header[148..156]).expect("checksum");
        check[148..156].fill(b' ');
        let sum: usize = check.iter().map(|b| usize::from(*b)).sum();
        assert_eq!(sum, stored, "checksum of the entry at {at}");
        let size = octal(&header[124..136]).expect("size");
        let data = tar[at + BLOCK..at + BLOCK + size].to_vec();
        if header[156] == b'x' {
            let text = String::from_utf8(data).expect("utf-8 records");
            pax_path = text
                .lines()
                .find_map(|l| l.split_once(" path=").map(|(_, p)| p.to_owned()));
        } else {
            let mode = u32::try_from(octal(&header[100..108]).expect("mode")).expect("mode");
            let name = pax_path.take().unwrap_or_else(|| full_name(header));
            all.push((name, mode, data));
        }
        at += BLOCK + size.div_ceil(BLOCK) * BLOCK;
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_renamed_to_its_full_path_keeping_mode_and_content() {
        let tar = one_file("db_password", b"s3cret\n", 0o440);
        let out = rebase(&tar, "run/secrets").expect("rebased");
        assert_eq!(
            entries(&out),
            [(
                "run/secrets/db_password".to_owned(),
                0o440,
                b"s3cret\n".to_vec()
            )]
        );
    }

    #[test]
    fn an_empty_prefix_keeps_the_name_and_the_root_config_stays_at_the_root() {
        let tar = one_file("app.conf", b"x=1", 0o444);
        let out = rebase(&tar, "").expect("rebased");
        assert_eq!(entries(&out)[0].0, "app.conf");
    }

    #[test]
    fn long_paths_use_the_ustar_prefix_or_a_pax_header() {
        let tar = one_file("f", b"1", 0o444);
        let deep = format!("etc/{}", "d".repeat(120));
        let out = rebase(&tar, &deep).expect("rebased");
        assert_eq!(entries(&out)[0].0, format!("{deep}/f"));
        let deeper = "x".repeat(300);
        let out = rebase(&tar, &deeper).expect("rebased");
        assert_eq!(entries(&out)[0].0, format!("{deeper}/f"));
    }

    #[test]
    fn a_pax_path_record_is_renamed_too() {
        let long = "n".repeat(130);
        let file = one_file("stub", b"abc", 0o400);
        let pax = pax_header(&file[..BLOCK], &pax_record("path", &long));
        let mut tar = pax;
        tar.extend_from_slice(&file);
        let out = rebase(&tar, "run/secrets").expect("rebased");
        assert_eq!(entries(&out)[0].0, format!("run/secrets/{long}"));
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in [1, 90, 93, 94, 95, 200, 994, 995, 996] {
            let record = pax_record("path", &"a".repeat(n));
            let (len, _) = std::str::from_utf8(&record)
                .expect("utf-8")
                .split_once(' ')
                .expect("space");
            assert_eq!(len.parse::<usize>().expect("number"), record.len(), "{n}");
        }
    }

    #[test]
    fn broken_archives_are_errors_not_panics() {
        let tar = one_file("x", b"content", 0o444);
        assert!(rebase(&tar[..BLOCK + 3], "run").is_err());
        let mut garbage = tar.clone();
        garbage[124..136].copy_from_slice(b"zzzzzzzzzzz\0");
        assert!(rebase(&garbage, "run").is_err());
        assert_eq!(rebase(&[], "run").expect("empty").len(), 2 * BLOCK);
    }
}
