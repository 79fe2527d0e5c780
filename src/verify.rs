//! Data integrity: every 512-byte sector of the target holds a pattern that is a pure
//! function of its offset, the run's seed, the fill's random nonce and the block's
//! generation (how many times thpbench wrote it), so any byte read can be checked, and
//! data that lands at the wrong place, not at all, or is stale (a lost write, or data
//! left by an earlier fill) is seen.
//!
//! Sector layout: bytes 0..8 the sector's offset (little endian), 8..16 the tag (the
//! nonce in the high 32 bits, the generation in the low 32), then 8-byte words
//! `base + i * STEP` for word index i, where `base = mix(sector offset, key)` and the key
//! mixes the seed with the tag. The body is an arithmetic progression so that stamping
//! and checking vectorize (one add per word instead of a multiply: about memcmp's speed,
//! see `cargo bench --bench harness`); the mixed base still makes every sector's words
//! differ from every other sector's, seed's and generation's. A read that never lands is
//! caught too: the buffer either holds another block's headers (another offset or
//! generation: the worker knows, per slot, what it last stamped or checked clean) or its
//! headers are poisoned before the read (worker.rs, `must_poison`).
//!
//! Two levels (`Level`): `Full` checks every byte read; `Pages` checks the header (16
//! bytes) of the first sector of every base page of the buffer, and poisons only those.
//! A page that holds another offset's, an older generation's or no data at all fails
//! its header, so the corruption the THP refcounting bugs cause (a page freed, reused
//! or left behind under I/O) is caught at 1/256 of the reading; a few bytes wrong inside
//! a page are not. Writes are always stamped whole, so the final pass after the window
//! checks every byte written.

pub const SECTOR: usize = 512;
pub const POISON: u64 = 0xdead_beef_dead_beef;

/// What a block's sectors carry besides their offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seed: u64,
    /// Random per fill of the target: data from an earlier fill never checks clean.
    pub nonce: u32,
    /// Writes of this block since the fill (kept in memory by its writer): a write that
    /// never reached the device leaves an older generation behind.
    pub generation: u32,
}

impl Stamp {
    /// Header word 1: nonce and generation, readable in a hex dump.
    #[inline]
    pub fn tag(&self) -> u64 {
        (u64::from(self.nonce) << 32) | u64::from(self.generation)
    }

    /// The body's key: every body word changes with the tag, not only the header.
    #[inline]
    fn key(&self) -> u64 {
        self.seed ^ self.tag().wrapping_mul(0xff51_afd7_ed55_8ccd)
    }
}

/// How much of the data a read's check covers: the workload's word for it (the
/// workload, and the result that stores it, sit below this module).
pub use crate::workload::VerifyLevel as Level;

/// The increment between a sector's body words: odd, so that the progression does not
/// repeat within a sector.
const STEP: u64 = 0x9e37_79b9_7f4a_7c15;

/// The first body word's base of the sector at `sector_off`.
#[inline]
fn sector_base(sector_off: u64, key: u64) -> u64 {
    // An odd multiplier is a bijection on u64: distinct sectors give distinct bases.
    (sector_off ^ key).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (sector_off >> 29)
}

#[inline]
fn expected_word(offset: u64, tag: u64, key: u64) -> u64 {
    let in_sector = offset % SECTOR as u64;
    match in_sector {
        0 => offset,
        8 => tag,
        _ => sector_base(offset - in_sector, key).wrapping_add((in_sector / 8).wrapping_mul(STEP)),
    }
}

/// Fills `buf` with the pattern of the target bytes starting at `offset` (8-aligned).
pub fn stamp(buf: &mut [u8], offset: u64, st: &Stamp) {
    debug_assert_eq!(offset % 8, 0);
    let (tag, key) = (st.tag(), st.key());
    if offset.is_multiple_of(SECTOR as u64) {
        // The usual case: whole sectors, header then body, no per-word branch.
        for (s, sector) in buf.chunks_mut(SECTOR).enumerate() {
            let sector_off = offset + (s * SECTOR) as u64;
            if sector.len() < SECTOR {
                stamp_words(sector, sector_off, tag, key);
                break;
            }
            sector[..8].copy_from_slice(&sector_off.to_le_bytes());
            sector[8..16].copy_from_slice(&tag.to_le_bytes());
            let mut w = sector_base(sector_off, key).wrapping_add(STEP.wrapping_mul(2));
            for chunk in sector[16..].chunks_exact_mut(8) {
                chunk.copy_from_slice(&w.to_le_bytes());
                w = w.wrapping_add(STEP);
            }
        }
        return;
    }
    stamp_words(buf, offset, tag, key);
}

fn stamp_words(buf: &mut [u8], offset: u64, tag: u64, key: u64) {
    for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&expected_word(offset + 8 * i as u64, tag, key).to_le_bytes());
    }
}

/// Overwrites the header words of every sector so that a read that does not land shows.
pub fn poison(buf: &mut [u8]) {
    poison_every(buf, SECTOR);
}

/// Overwrites the header words of the sector at every `stride` bytes of `buf` (a multiple
/// of the sector), from its start.
pub fn poison_every(buf: &mut [u8], stride: usize) {
    debug_assert!(stride.is_multiple_of(SECTOR));
    for sector in buf.chunks_mut(stride) {
        if sector.len() >= 16 {
            sector[..8].copy_from_slice(&POISON.to_le_bytes());
            sector[8..16].copy_from_slice(&POISON.to_le_bytes());
        }
    }
}

/// `poison` or `poison_every` base page, as `level` checks.
pub fn poison_for(buf: &mut [u8], level: Level, page: usize) {
    match level {
        Level::Full => poison(buf),
        Level::Pages => poison_every(buf, page),
    }
}

/// Checks `buf` at `level`: every byte, or the header of the sector at every `page` bytes
/// from its start. Returns (wrong sectors, first difference, bytes compared).
pub fn check_at(
    buf: &[u8],
    offset: u64,
    st: &Stamp,
    level: Level,
    page: usize,
) -> (u64, Option<Difference>, u64) {
    match level {
        Level::Full => {
            let (bad, first) = check(buf, offset, st);
            (bad, first, buf.len() as u64)
        }
        Level::Pages => check_headers(buf, offset, st, page),
    }
}

/// The `Pages` level: the two header words of the sector at every `stride` bytes.
pub fn check_headers(
    buf: &[u8],
    offset: u64,
    st: &Stamp,
    stride: usize,
) -> (u64, Option<Difference>, u64) {
    debug_assert!(stride.is_multiple_of(SECTOR));
    let tag = st.tag();
    let (mut bad, mut first, mut compared) = (0u64, None, 0u64);
    for (p, chunk) in buf.chunks(stride).enumerate() {
        if chunk.len() < 16 {
            continue;
        }
        let at = offset + (p * stride) as u64;
        let got0 = u64::from_le_bytes(chunk[..8].try_into().unwrap());
        let got1 = u64::from_le_bytes(chunk[8..16].try_into().unwrap());
        compared += 16;
        if got0 != at || got1 != tag {
            bad += 1;
            if first.is_none() {
                let sector = &chunk[..chunk.len().min(SECTOR)];
                first = Some(describe(sector, at, if got0 != at { 0 } else { 8 }, st));
            }
        }
    }
    (bad, first, compared)
}

/// The first difference found in a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Target offset of the first wrong byte.
    pub offset: u64,
    pub expected: Vec<u8>,
    pub actual: Vec<u8>,
}

/// Checks `buf` against the pattern for target `offset`. Returns the number of sectors
/// holding at least one wrong byte, and the first wrong byte's details.
pub fn check(buf: &[u8], offset: u64, st: &Stamp) -> (u64, Option<Difference>) {
    let (tag, key) = (st.tag(), st.key());
    let mut bad_sectors = 0u64;
    let mut first = None;
    for (s, sector) in buf.chunks(SECTOR).enumerate() {
        let sector_off = offset + (s * SECTOR) as u64;
        let bad_word = if sector.len() == SECTOR {
            first_bad_word_in_sector(sector, sector_off, tag, key)
        } else {
            sector.chunks_exact(8).enumerate().position(|(i, w)| {
                u64::from_le_bytes(w.try_into().unwrap())
                    != expected_word(sector_off + 8 * i as u64, tag, key)
            })
        };
        if let Some(i) = bad_word {
            bad_sectors += 1;
            if first.is_none() {
                first = Some(describe(sector, sector_off, i * 8, st));
            }
        }
    }
    (bad_sectors, first)
}

/// The fast path for a whole sector (I/O is sector-aligned): the header, then the mixed
/// words, accumulated without branches so the compiler can vectorize; the exact position
/// is looked for only when something differs.
#[inline]
fn first_bad_word_in_sector(sector: &[u8], sector_off: u64, tag: u64, key: u64) -> Option<usize> {
    let word_at = |i: usize| u64::from_le_bytes(sector[i * 8..i * 8 + 8].try_into().unwrap());
    let mut diff = (word_at(0) ^ sector_off) | (word_at(1) ^ tag);
    let mut expected = sector_base(sector_off, key).wrapping_add(STEP.wrapping_mul(2));
    for w in sector[16..SECTOR].chunks_exact(8) {
        diff |= u64::from_le_bytes(w.try_into().unwrap()) ^ expected;
        expected = expected.wrapping_add(STEP);
    }
    if diff == 0 {
        return None;
    }
    (0..SECTOR / 8).find(|&i| word_at(i) != expected_word(sector_off + 8 * i as u64, tag, key))
}

fn describe(sector: &[u8], sector_off: u64, from: usize, st: &Stamp) -> Difference {
    let mut expected = vec![0u8; sector.len()];
    stamp(&mut expected, sector_off, st);
    let i = (from..sector.len())
        .find(|&i| expected[i] != sector[i])
        .unwrap_or(from);
    let end = (i + 16).min(sector.len());
    Difference {
        offset: sector_off + i as u64,
        expected: expected[i..end].to_vec(),
        actual: sector[i..end].to_vec(),
    }
}

/// The final pass reads this much at a time (whole blocks; one block when larger).
const FINAL_CHUNK: u64 = 4 << 20;
/// Mismatched blocks the final pass describes.
const FINAL_DESCRIBED: usize = 16;

/// The final pass: reads blocks [0, blocks) of `bs` bytes from `fd` and checks each
/// against `stamp_of(block)`, the generation the run last wrote there. Stops early, and
/// says so in `incomplete`, when `stop()` (a signal) or a read fails.
pub fn final_pass(
    fd: std::os::fd::RawFd,
    blocks: u64,
    bs: u64,
    stamp_of: &dyn Fn(u64) -> Stamp,
    stop: &dyn Fn() -> bool,
) -> crate::result::FinalVerify {
    let t0 = crate::measure::now_ns();
    let per_read = (FINAL_CHUNK / bs).max(1);
    let mut buf = crate::buffer::AlignedBuf::new((per_read * bs) as usize);
    let mut r = crate::result::FinalVerify::default();
    let mut b = 0;
    while b < blocks {
        if stop() {
            r.incomplete = Some(format!(
                "interrupted by a signal after {b} of {blocks} blocks"
            ));
            break;
        }
        let n = per_read.min(blocks - b);
        let data = &mut buf.as_mut_slice()[..(n * bs) as usize];
        if let Err(e) = read_exact_at(fd, data, b * bs) {
            r.incomplete = Some(format!(
                "reading {} bytes at offset {} failed: {}",
                data.len(),
                b * bs,
                crate::system::errno_text(&e)
            ));
            break;
        }
        for (i, block_data) in data.chunks_exact(bs as usize).enumerate() {
            let block = b + i as u64;
            let st = stamp_of(block);
            let (bad, first) = check(block_data, block * bs, &st);
            r.blocks_checked += 1;
            r.bytes_checked += bs;
            if bad == 0 {
                continue;
            }
            r.mismatched_blocks += 1;
            r.mismatches += bad;
            if let Some(d) = first.filter(|_| r.first_mismatches.len() < FINAL_DESCRIBED) {
                r.first_mismatches.push(crate::result::FinalMismatch {
                    offset: d.offset,
                    generation: st.generation,
                    expected: hex(&d.expected),
                    actual: hex(&d.actual),
                });
            }
        }
        b += n;
    }
    r.time_ns = crate::measure::now_ns() - t0;
    r
}

/// pread until `buf` is full; end of file is an error (the region lies inside it).
fn read_exact_at(fd: std::os::fd::RawFd, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled rest of `buf`.
        let n = unsafe {
            libc::pread(
                fd,
                buf[done..].as_mut_ptr().cast(),
                buf.len() - done,
                (offset + done as u64) as libc::off_t,
            )
        };
        match n {
            n if n > 0 => done += n as usize,
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ST: Stamp = Stamp {
        seed: 1,
        nonce: 0x1234_5678,
        generation: 0,
    };

    #[test]
    fn stamped_data_checks_clean() {
        let mut b = vec![0u8; 8192];
        let st = Stamp { seed: 42, ..ST };
        stamp(&mut b, 1 << 20, &st);
        assert_eq!(check(&b, 1 << 20, &st), (0, None));
    }

    #[test]
    fn header_carries_offset_nonce_and_generation() {
        let mut b = vec![0u8; 1024];
        stamp(
            &mut b,
            4096,
            &Stamp {
                generation: 7,
                ..ST
            },
        );
        assert_eq!(
            u64::from_le_bytes(b[512..520].try_into().unwrap()),
            4096 + 512
        );
        assert_eq!(
            u64::from_le_bytes(b[520..528].try_into().unwrap()),
            0x1234_5678_0000_0007
        );
    }

    #[test]
    fn a_flipped_byte_is_found_with_its_offset() {
        let mut b = vec![0u8; 4096];
        stamp(&mut b, 0, &ST);
        b[1000] ^= 0xff;
        let (bad, diff) = check(&b, 0, &ST);
        assert_eq!(bad, 1);
        let d = diff.unwrap();
        assert_eq!(d.offset, 1000);
        assert_eq!(d.actual[0], d.expected[0] ^ 0xff);
    }

    #[test]
    fn data_from_another_offset_or_seed_is_caught() {
        let mut b = vec![0u8; 512];
        stamp(&mut b, 512, &ST);
        assert_eq!(check(&b, 0, &ST).0, 1);
        assert_eq!(check(&b, 512, &Stamp { seed: 2, ..ST }).0, 1);
    }

    /// A lost write leaves the previous generation; stale data from an earlier fill
    /// carries another nonce. Both are mismatches in every sector, header and body.
    #[test]
    fn a_lost_write_or_stale_data_is_caught() {
        let mut old = vec![0u8; 4096];
        stamp(
            &mut old,
            8192,
            &Stamp {
                generation: 3,
                ..ST
            },
        );
        let (bad, first) = check(
            &old,
            8192,
            &Stamp {
                generation: 4,
                ..ST
            },
        );
        assert_eq!(bad, 8);
        assert_eq!(first.unwrap().offset, 8192 + 8, "the tag differs first");
        assert_eq!(
            check(
                &old,
                8192,
                &Stamp {
                    nonce: 9,
                    generation: 3,
                    ..ST
                }
            )
            .0,
            8
        );
        // The body alone (header restored) still tells generations apart.
        let mut body_only = old.clone();
        let mut new = vec![0u8; 4096];
        stamp(
            &mut new,
            8192,
            &Stamp {
                generation: 4,
                ..ST
            },
        );
        for s in 0..8 {
            body_only[s * SECTOR..s * SECTOR + 16]
                .copy_from_slice(&new[s * SECTOR..s * SECTOR + 16]);
        }
        assert_eq!(
            check(
                &body_only,
                8192,
                &Stamp {
                    generation: 4,
                    ..ST
                }
            )
            .0,
            8
        );
    }

    /// A memfd holding `blocks` blocks of 4 KiB stamped at generation `gen(block)`.
    fn memfd_target(blocks: u64, gen: &dyn Fn(u64) -> u32) -> std::fs::File {
        use std::os::fd::FromRawFd;
        use std::os::unix::fs::FileExt;
        // SAFETY: the name is a NUL-terminated literal.
        let fd = unsafe { libc::memfd_create(c"verify-test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fd was just opened and is owned by nothing else.
        let f = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut b = vec![0u8; 4096];
        for block in 0..blocks {
            let st = Stamp {
                generation: gen(block),
                ..ST
            };
            stamp(&mut b, block * 4096, &st);
            f.write_all_at(&b, block * 4096).unwrap();
        }
        f
    }

    #[test]
    fn the_final_pass_checks_every_block_at_its_own_generation() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::FileExt;
        // 3000 blocks (more than one 4 MiB read), each written (block % 5) times.
        let gen = |b: u64| (b % 5) as u32;
        let f = memfd_target(3000, &gen);
        let stamp_of = |b: u64| Stamp {
            generation: gen(b),
            ..ST
        };
        let clean = final_pass(f.as_raw_fd(), 3000, 4096, &stamp_of, &|| false);
        assert_eq!(
            (clean.blocks_checked, clean.bytes_checked, clean.mismatches),
            (3000, 3000 * 4096, 0)
        );
        assert_eq!(clean.incomplete, None);
        // A foreign write over blocks 1500..1502, and block 2999 left at an older
        // generation (a lost write).
        f.write_all_at(&[0x5a; 2 * 4096], 1500 * 4096).unwrap();
        let stale = |b: u64| Stamp {
            generation: if b == 2999 { gen(b) + 1 } else { gen(b) },
            ..ST
        };
        let r = final_pass(f.as_raw_fd(), 3000, 4096, &stale, &|| false);
        assert_eq!(r.mismatched_blocks, 3);
        assert_eq!(r.mismatches, 3 * 8, "every sector of the three blocks");
        let offsets: Vec<u64> = r.first_mismatches.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [1500 * 4096, 1501 * 4096, 2999 * 4096 + 8]);
        assert_eq!(r.first_mismatches[2].generation, 5);
        // A signal stops it, and it says how far it got.
        let stopped = final_pass(f.as_raw_fd(), 3000, 4096, &stamp_of, &|| true);
        assert_eq!(stopped.blocks_checked, 0);
        assert!(stopped
            .incomplete
            .unwrap()
            .contains("after 0 of 3000 blocks"));
        // A region past the end of the file: the read that reaches it fails, named with
        // its offset (the third read of 1024 blocks).
        let short = final_pass(f.as_raw_fd(), 4000, 4096, &stamp_of, &|| false);
        assert_eq!(short.blocks_checked, 2048);
        assert!(short.incomplete.unwrap().contains("at offset 8388608"));
    }

    #[test]
    fn a_read_that_never_lands_is_caught() {
        let mut b = vec![0u8; 1024];
        stamp(&mut b, 0, &ST);
        poison(&mut b);
        assert_eq!(check(&b, 0, &ST).0, 2);
    }

    #[test]
    fn the_pages_level_checks_one_header_per_page_and_full_every_byte() {
        for page in [4096usize, 16384, 65536] {
            let len = 4 * page;
            let mut b = vec![0u8; len];
            stamp(&mut b, 1 << 30, &ST);
            assert_eq!(
                check_at(&b, 1 << 30, &ST, Level::Pages, page),
                (0, None, 64)
            );
            assert_eq!(check_at(&b, 1 << 30, &ST, Level::Full, page).2, len as u64);
            // A byte wrong inside a page's body: only the full level sees it.
            b[page + 700] ^= 1;
            assert_eq!(check_at(&b, 1 << 30, &ST, Level::Pages, page).0, 0);
            assert_eq!(check_at(&b, 1 << 30, &ST, Level::Full, page).0, 1);
            b[page + 700] ^= 1;
            // A whole page from another offset (a page reused under I/O): both see it.
            let mut other = vec![0u8; page];
            stamp(&mut other, 1 << 31, &ST);
            b[2 * page..3 * page].copy_from_slice(&other);
            let (bad, first, _) = check_at(&b, 1 << 30, &ST, Level::Pages, page);
            assert_eq!(bad, 1);
            let head = (1u64 << 30) + 2 * page as u64;
            assert!((head..head + 16).contains(&first.unwrap().offset));
            assert_eq!(
                check_at(&b, 1 << 30, &ST, Level::Full, page).0,
                (page / SECTOR) as u64
            );
        }
    }

    #[test]
    fn the_pages_level_sees_stale_generations_and_reads_that_never_land() {
        let page = 4096;
        let mut b = vec![0u8; 2 * page];
        let older = Stamp {
            generation: ST.generation.wrapping_sub(1),
            ..ST
        };
        stamp(&mut b, 0, &older);
        assert_eq!(
            check_headers(&b, 0, &ST, page).0,
            2,
            "a lost write leaves the older tag"
        );
        stamp(&mut b, 0, &ST);
        poison_for(&mut b, Level::Pages, page);
        // Only the page heads were poisoned: the other sectors' headers are intact.
        assert_eq!(check(&b, 0, &ST).0, 2);
        assert_eq!(check_headers(&b, 0, &ST, page).0, 2);
    }

    #[test]
    fn the_body_is_a_progression_that_differs_between_sectors_seeds_and_tags() {
        let mut a = vec![0u8; 1024];
        stamp(&mut a, 0, &ST);
        let w = |b: &[u8], i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        // Two adjacent body words of one sector differ by STEP.
        assert_eq!(w(&a, 3).wrapping_sub(w(&a, 2)), STEP);
        // No body word of sector 0 equals the same word of sector 1 or of another seed.
        let mut c = vec![0u8; 512];
        stamp(
            &mut c,
            0,
            &Stamp {
                seed: ST.seed ^ 1,
                ..ST
            },
        );
        for i in 2..64 {
            assert_ne!(w(&a, i), w(&a, 64 + i));
            assert_ne!(w(&a, i), w(&c, i));
        }
        // stamp_words (unaligned start) and the sector fast path agree.
        let mut d = vec![0u8; 1024 - 8];
        stamp(&mut d, 8, &ST);
        assert_eq!(&d[..], &a[8..]);
    }
}
