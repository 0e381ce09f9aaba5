//! Searching a live process's memory for secret bytes through
//! `/proc/PID/maps` and `/proc/PID/mem` (needs ptrace rights; root has them),
//! and recovering a CMK from its key token the way only the daemon should.
//!
//! Every readable mapping is read in 1 MiB chunks with an overlap so a needle
//! spanning two chunks is still found. `[vvar]`-like mappings are skipped
//! (reading them fails with EIO); any other chunk that fails to read is counted
//! in `failed_bytes` so a test can see how much it could not look at.

use std::fs::File;
use std::os::unix::fs::FileExt;

use aes_kw::KekAes256;

const CHUNK: usize = 1 << 20;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub name: String,
}

/// Where a needle was found.
#[derive(Debug, Clone)]
pub struct Hit {
    pub needle: usize,
    pub addr: u64,
    pub mapping: String,
}

/// Result of [`scan`].
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    pub mappings_read: usize,
    pub bytes_read: u64,
    pub failed_bytes: u64,
    pub hits: Vec<Hit>,
}

impl ScanReport {
    /// Hits for needle number `i`.
    pub fn hits_for(&self, i: usize) -> Vec<&Hit> {
        self.hits.iter().filter(|h| h.needle == i).collect()
    }
}

/// Parses `/proc/PID/maps`.
pub fn mappings(pid: u32) -> Vec<Mapping> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/maps: {e}"));
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next()?;
            let perms = f.next()?.to_owned();
            let name = f.nth(3).unwrap_or("").to_owned();
            let (s, e) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                perms,
                name,
            })
        })
        .collect()
}

fn skipped(m: &Mapping) -> bool {
    !m.perms.starts_with('r')
        || matches!(m.name.as_str(), "[vvar]" | "[vvar_vclock]" | "[vsyscall]")
}

/// Searches every readable mapping of `pid` for each of `needles`.
pub fn scan(pid: u32, needles: &[&[u8]]) -> ScanReport {
    assert!(needles.iter().all(|n| !n.is_empty()), "empty needle");
    let overlap = needles.iter().map(|n| n.len()).max().unwrap_or(1) - 1;
    let finders: Vec<memchr::memmem::Finder<'_>> =
        needles.iter().map(memchr::memmem::Finder::new).collect();
    let mem = File::open(format!("/proc/{pid}/mem"))
        .unwrap_or_else(|e| panic!("open /proc/{pid}/mem: {e}"));
    let mut report = ScanReport::default();
    let mut buf = vec![0u8; CHUNK + overlap];
    for m in mappings(pid).iter().filter(|m| !skipped(m)) {
        report.mappings_read += 1;
        let mut addr = m.start;
        while addr < m.end {
            let len = usize::try_from((m.end - addr).min((CHUNK + overlap) as u64))
                .expect("chunk fits usize");
            match read_fully(&mem, &mut buf[..len], addr) {
                Ok(()) => {
                    report.bytes_read += len as u64;
                    for (i, f) in finders.iter().enumerate() {
                        for off in f.find_iter(&buf[..len]) {
                            let hit_addr = addr + off as u64;
                            // A needle inside the overlap is found again by the next chunk.
                            if off < CHUNK || addr + (len as u64) >= m.end {
                                report.hits.push(Hit {
                                    needle: i,
                                    addr: hit_addr,
                                    mapping: format!(
                                        "{} {} {:x}-{:x}",
                                        m.perms, m.name, m.start, m.end
                                    ),
                                });
                            }
                        }
                    }
                }
                Err(_) => report.failed_bytes += len as u64,
            }
            addr += CHUNK as u64;
        }
    }
    report.hits.sort_by_key(|h| (h.needle, h.addr));
    report.hits.dedup_by_key(|h| (h.needle, h.addr));
    report
}

fn read_fully(f: &File, buf: &mut [u8], addr: u64) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = f.read_at(&mut buf[done..], addr + done as u64)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        done += n;
    }
    Ok(())
}

/// The fields of an unwrapped key token (ARCHITECTURE.md, "Key token").
#[derive(Debug)]
pub struct TokenPayload {
    pub spec: u8,
    pub version: u32,
    pub key_id: String,
    pub material: Vec<u8>,
}

/// The master-key generation a token names and its AES-KWP part: a
/// headerless token (length a multiple of 8) is generation 1, otherwise
/// `"HKG" | generation u32 BE | KWP`.
///
/// # Panics
/// When the token has neither shape.
pub fn split_token(token: &[u8]) -> (u32, &[u8]) {
    if token.len().is_multiple_of(8) {
        return (1, token);
    }
    assert_eq!(&token[..3], b"HKG", "token header magic");
    let generation = u32::from_be_bytes(token[3..7].try_into().expect("4 bytes"));
    (generation, &token[7..])
}

/// Unwraps `token`'s KWP part under `master_key`, or `None` when AES-KWP's
/// integrity check fails (another master key).
pub fn try_unwrap_token(master_key: &[u8; 32], token: &[u8]) -> Option<Vec<u8>> {
    KekAes256::new(master_key.into())
        .unwrap_with_padding_vec(split_token(token).1)
        .ok()
}

/// Unwraps `token` (AES-KWP under `master_key`, after its generation
/// header if any) and parses
/// `"HKT1" | spec | version BE | id_len | id | material`.
///
/// # Panics
/// When the token does not unwrap or parse: the contract is broken.
pub fn unwrap_token(master_key: &[u8; 32], token: &[u8]) -> TokenPayload {
    let p = try_unwrap_token(master_key, token)
        .expect("key token unwraps under the master key (AES-KWP)");
    assert_eq!(&p[..4], b"HKT1", "token payload magic");
    let spec = p[4];
    let version = u32::from_be_bytes(p[5..9].try_into().expect("4 bytes"));
    let id_len = usize::from(p[9]);
    let key_id = String::from_utf8(p[10..10 + id_len].to_vec()).expect("UTF-8 key id");
    let material = p[10 + id_len..].to_vec();
    TokenPayload {
        spec,
        version,
        key_id,
        material,
    }
}

/// `(key_id, version, token)` rows of `key_versions` in the frontend's db.
pub fn read_tokens(db: &std::path::Path) -> Vec<(String, u32, Vec<u8>)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let mut stmt = conn
        .prepare("SELECT key_id, version, token FROM key_versions ORDER BY key_id, version")
        .expect("key_versions table per ARCHITECTURE.md");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query key_versions")
        .collect::<Result<_, _>>()
        .expect("read key_versions rows")
}

/// `(name, key_id, token)` rows of `system_keys` in the frontend's db.
pub fn read_system_tokens(db: &std::path::Path) -> Vec<(String, String, Vec<u8>)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let mut stmt = conn
        .prepare("SELECT name, key_id, token FROM system_keys ORDER BY name")
        .expect("system_keys table per ARCHITECTURE.md");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query system_keys")
        .collect::<Result<_, _>>()
        .expect("read system_keys rows")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn scan_finds_a_needle_in_our_own_heap() {
        let needle: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
        let boxed = needle.clone().into_boxed_slice();
        let report = scan(std::process::id(), &[&needle, &boxed]);
        assert!(report.bytes_read > 0);
        let addrs: Vec<u64> = report.hits_for(0).iter().map(|h| h.addr).collect();
        assert!(addrs.contains(&(boxed.as_ptr() as u64)), "{addrs:x?}");
        assert!(addrs.contains(&(needle.as_ptr() as u64)), "{addrs:x?}");
    }

    #[test]
    fn token_round_trip() {
        let master = [7u8; 32];
        let mut payload = b"HKT1".to_vec();
        payload.push(1);
        payload.extend(3u32.to_be_bytes());
        payload.push(3);
        payload.extend(b"abc");
        payload.extend([9u8; 32]);
        let token = KekAes256::new(&master.into())
            .wrap_with_padding_vec(&payload)
            .unwrap();
        let p = unwrap_token(&master, &token);
        assert_eq!((p.spec, p.version, p.key_id.as_str()), (1, 3, "abc"));
        assert_eq!(p.material, [9u8; 32]);
    }
}
