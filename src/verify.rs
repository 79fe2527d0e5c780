//! Data integrity: every 512-byte sector of the target holds a pattern that is a pure
//! function of its offset and the run's seed, so any byte read can be checked, and data
//! that lands at the wrong place, or not at all, is seen.
//!
//! Sector layout: bytes 0..8 the sector's offset (little endian), 8..16 the seed, then
//! 8-byte words `mix(offset of the word, seed)`. Before a read the two header words of
//! each sector in the buffer are poisoned, so a read that never lands is caught too.

pub const SECTOR: usize = 512;
const POISON: u64 = 0xdead_beef_dead_beef;

#[inline]
fn word(offset: u64, seed: u64) -> u64 {
    // An odd multiplier is a bijection on u64: distinct offsets give distinct words.
    (offset ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (offset >> 29)
}

#[inline]
fn expected_word(offset: u64, seed: u64) -> u64 {
    match offset % SECTOR as u64 {
        0 => offset,
        8 => seed,
        _ => word(offset, seed),
    }
}

/// Fills `buf` with the pattern of the target bytes starting at `offset` (8-aligned).
pub fn stamp(buf: &mut [u8], offset: u64, seed: u64) {
    debug_assert_eq!(offset % 8, 0);
    for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&expected_word(offset + 8 * i as u64, seed).to_le_bytes());
    }
}

/// Overwrites the header words of every sector so that a read that does not land shows.
pub fn poison(buf: &mut [u8]) {
    for sector in buf.chunks_mut(SECTOR) {
        if sector.len() >= 16 {
            sector[..8].copy_from_slice(&POISON.to_le_bytes());
            sector[8..16].copy_from_slice(&POISON.to_le_bytes());
        }
    }
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
pub fn check(buf: &[u8], offset: u64, seed: u64) -> (u64, Option<Difference>) {
    let mut bad_sectors = 0u64;
    let mut first = None;
    for (s, sector) in buf.chunks(SECTOR).enumerate() {
        let sector_off = offset + (s * SECTOR) as u64;
        let bad_word = if sector.len() == SECTOR {
            first_bad_word_in_sector(sector, sector_off, seed)
        } else {
            sector.chunks_exact(8).enumerate().position(|(i, w)| {
                u64::from_le_bytes(w.try_into().unwrap())
                    != expected_word(sector_off + 8 * i as u64, seed)
            })
        };
        if let Some(i) = bad_word {
            bad_sectors += 1;
            if first.is_none() {
                first = Some(describe(sector, sector_off, i * 8, seed));
            }
        }
    }
    (bad_sectors, first)
}

/// The fast path for a whole sector (I/O is sector-aligned): the header, then the mixed
/// words, accumulated without branches so the compiler can vectorize; the exact position
/// is looked for only when something differs.
#[inline]
fn first_bad_word_in_sector(sector: &[u8], sector_off: u64, seed: u64) -> Option<usize> {
    let word_at = |i: usize| u64::from_le_bytes(sector[i * 8..i * 8 + 8].try_into().unwrap());
    let mut diff = (word_at(0) ^ sector_off) | (word_at(1) ^ seed);
    for i in 2..SECTOR / 8 {
        diff |= word_at(i) ^ word(sector_off + 8 * i as u64, seed);
    }
    if diff == 0 {
        return None;
    }
    (0..SECTOR / 8).find(|&i| word_at(i) != expected_word(sector_off + 8 * i as u64, seed))
}

fn describe(sector: &[u8], sector_off: u64, from: usize, seed: u64) -> Difference {
    let mut expected = vec![0u8; sector.len()];
    stamp(&mut expected, sector_off, seed);
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_data_checks_clean() {
        let mut b = vec![0u8; 8192];
        stamp(&mut b, 1 << 20, 42);
        assert_eq!(check(&b, 1 << 20, 42), (0, None));
    }

    #[test]
    fn header_carries_offset_and_seed() {
        let mut b = vec![0u8; 1024];
        stamp(&mut b, 4096, 7);
        assert_eq!(
            u64::from_le_bytes(b[512..520].try_into().unwrap()),
            4096 + 512
        );
        assert_eq!(u64::from_le_bytes(b[520..528].try_into().unwrap()), 7);
    }

    #[test]
    fn a_flipped_byte_is_found_with_its_offset() {
        let mut b = vec![0u8; 4096];
        stamp(&mut b, 0, 1);
        b[1000] ^= 0xff;
        let (bad, diff) = check(&b, 0, 1);
        assert_eq!(bad, 1);
        let d = diff.unwrap();
        assert_eq!(d.offset, 1000);
        assert_eq!(d.actual[0], d.expected[0] ^ 0xff);
    }

    #[test]
    fn data_from_another_offset_or_seed_is_caught() {
        let mut b = vec![0u8; 512];
        stamp(&mut b, 512, 1);
        assert_eq!(check(&b, 0, 1).0, 1);
        assert_eq!(check(&b, 512, 2).0, 1);
    }

    #[test]
    fn a_read_that_never_lands_is_caught() {
        let mut b = vec![0u8; 1024];
        stamp(&mut b, 0, 1);
        poison(&mut b);
        assert_eq!(check(&b, 0, 1).0, 2);
    }
}
