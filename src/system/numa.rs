//! NUMA placement of the I/O buffers: binding each worker's part of the buffer to the
//! worker's node with mbind(2) before anything faults it, interleaving on request, and
//! proving where the pages are with move_pages(2) (NULL nodes: a query, nothing moves).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::topology::Topology;

pub use crate::workload::Numa;

/// A worker's share of its buffer's pages on its own node below this makes a
/// `numa = "local"` run invalid.
pub const MIN_LOCAL: f64 = 0.99;

// From include/uapi/linux/mempolicy.h.
const MPOL_PREFERRED: libc::c_int = 1;
const MPOL_INTERLEAVE: libc::c_int = 3;

/// Sets the memory policy of `[addr, addr + len)`: `nodes` preferred (one node) or
/// interleaved (several). Pages already faulted stay where they are.
pub fn mbind(addr: usize, len: usize, nodes: &[u32], interleave: bool) -> io::Result<()> {
    let max = nodes.iter().copied().max().unwrap_or(0) as usize + 1;
    let mut mask = vec![0 as libc::c_ulong; max.div_ceil(libc::c_ulong::BITS as usize)];
    for &n in nodes {
        let bits = libc::c_ulong::BITS as usize;
        mask[n as usize / bits] |= 1 << (n as usize % bits);
    }
    let mode = if interleave {
        MPOL_INTERLEAVE
    } else {
        MPOL_PREFERRED
    };
    // The kernel reads maxnode - 1 bits (a historical off-by-one), so pass one more.
    let maxnode = mask.len() * libc::c_ulong::BITS as usize + 1;
    // SAFETY: the mask lives across the call; the range is the caller's mapping.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr,
            len,
            mode,
            mask.as_ptr(),
            maxnode,
            0u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The node of every base page of `[addr, addr + len)`; a negative errno for a page
/// that is not present (-ENOENT) or cannot be asked about.
pub fn page_nodes(addr: usize, len: usize) -> io::Result<Vec<i32>> {
    // Pages per move_pages(2) call.
    const CHUNK: usize = 4096;
    let pages: Vec<usize> = (addr..addr + len)
        .step_by(crate::pages::base_page())
        .collect();
    let mut status = vec![0i32; pages.len()];
    for (p, s) in pages.chunks(CHUNK).zip(status.chunks_mut(CHUNK)) {
        // SAFETY: p and s have the same length and live across the call; NULL nodes
        // makes this a query.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_pages,
                0,
                p.len(),
                p.as_ptr(),
                std::ptr::null::<libc::c_int>(),
                s.as_mut_ptr(),
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(status)
}

/// Pages per node among those present (absent pages are not counted).
pub fn node_pages(status: &[i32]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for &s in status.iter().filter(|&&s| s >= 0) {
        *out.entry(format!("node{s}")).or_default() += 1;
    }
    out
}

/// The share of the present pages that are on `node`; None when no page is present.
pub fn local_share(status: &[i32], node: u32) -> Option<f64> {
    let present = status.iter().filter(|&&s| s >= 0).count();
    let local = status.iter().filter(|&&s| s == node as i32).count();
    (present > 0).then(|| local as f64 / present as f64)
}

/// Nodes with memory (`node/has_memory`), or every node read.
pub fn memory_nodes(root: &Path, topo: &Topology) -> Vec<u32> {
    std::fs::read_to_string(root.join("node/has_memory"))
        .ok()
        .and_then(|s| crate::units::parse_cpu_list(s.trim()).ok())
        .map(|v| v.into_iter().map(|n| n as u32).collect())
        .unwrap_or_else(|| topo.nodes.iter().map(|n| n.id).collect())
}

/// Applies `numa` to a buffer whose worker `t` owns `ranges[t]` (offset, len) and runs
/// on `nodes[t]`, before the buffer is faulted. `shared`: no worker owns any part, so
/// `local` sets no policy. Returns what could not be done, for the result.
pub fn place(
    numa: Numa,
    base: usize,
    len: usize,
    ranges: &[(usize, usize)],
    nodes: &[u32],
    shared: bool,
) -> Result<(), String> {
    let fail = |what: &str, e: io::Error| {
        format!(
            "mbind({what}) on the buffer failed: {}",
            super::errno_text(&e)
        )
    };
    match numa {
        Numa::Any => Ok(()),
        Numa::Interleave => {
            let topo = Topology::current();
            let all = memory_nodes(Path::new(super::topology::SYSFS_SYSTEM), &topo);
            mbind(base, len, &all, true).map_err(|e| fail("MPOL_INTERLEAVE", e))
        }
        Numa::Local if shared => Ok(()),
        Numa::Local => {
            for (&(off, l), &node) in ranges.iter().zip(nodes) {
                mbind(base + off, l, &[node], false).map_err(|e| fail("MPOL_PREFERRED", e))?;
            }
            Ok(())
        }
    }
}

/// Per node: free memory, free blocks of at least `block` bytes in the buddy allocator
/// (what a THP fault needs), and free/total hugetlb pages of that size, for people
/// told that a buffer could not be backed. Buddy orders count base pages of `page` bytes.
pub fn huge_page_capacity(root: &Path, buddyinfo: &str, block: u64, page: u64) -> String {
    let topo = Topology::read(root);
    let order = (block / page).max(1).ilog2() as usize;
    topo.nodes
        .iter()
        .map(|n| {
            let blocks: u64 = buddyinfo
                .lines()
                .filter(|l| l.starts_with(&format!("Node {},", n.id)))
                .map(|l| {
                    l.split_whitespace()
                        .skip(4)
                        .enumerate()
                        .filter(|(o, _)| *o >= order)
                        .map(|(o, c)| c.parse::<u64>().unwrap_or(0) << (o - order))
                        .sum::<u64>()
                })
                .sum();
            let hp = root.join(format!(
                "node/node{}/hugepages/hugepages-{}kB",
                n.id,
                block / 1024
            ));
            let num = |f: &str| super::read_trimmed(hp.join(f)).ok();
            format!(
                "node {}: {} free, {} free {} blocks, hugetlb {}/{} free",
                n.id,
                n.mem_free
                    .map_or("?".into(), |b| crate::units::human_bytes(b as f64)),
                blocks,
                crate::units::format_size(block),
                num("free_hugepages").unwrap_or_else(|| "?".into()),
                num("nr_hugepages").unwrap_or_else(|| "?".into()),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The same for this machine.
pub fn huge_page_capacity_now(block: u64) -> String {
    huge_page_capacity(
        Path::new(super::topology::SYSFS_SYSTEM),
        &std::fs::read_to_string("/proc/buddyinfo").unwrap_or_default(),
        block,
        crate::pages::base_page() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_share_counts_present_pages_only() {
        assert_eq!(local_share(&[0, 0, 1, -libc::ENOENT], 0), Some(2.0 / 3.0));
        assert_eq!(local_share(&[1, 1], 1), Some(1.0));
        assert_eq!(local_share(&[-libc::ENOENT], 0), None);
        let pages = node_pages(&[0, 1, 1, -libc::ENOENT]);
        assert_eq!(pages.get("node1"), Some(&2));
        assert_eq!(pages.len(), 2);
    }

    #[test]
    fn capacity_names_each_node_with_free_pmd_blocks() {
        let dir = tempfile::tempdir().unwrap();
        crate::system::topology::write_fake_sysfs(dir.path(), &[(0, 0, 0, 0), (1, 1, 0, 1)], &[])
            .unwrap();
        let hp = dir.path().join("node/node1/hugepages/hugepages-2048kB");
        std::fs::create_dir_all(&hp).unwrap();
        std::fs::write(hp.join("free_hugepages"), "3\n").unwrap();
        std::fs::write(hp.join("nr_hugepages"), "4\n").unwrap();
        // Orders 0..10; node 0 has one order-9 and one order-10 block = 3 PMD blocks.
        let buddy = "Node 0, zone   Normal 5 5 5 5 5 5 5 5 5 1 1\nNode 1, zone   Normal 9 9 9 9 9 9 9 9 9 0 0\n";
        // 4 KiB pages: a 2 MiB block is order 9.
        let text = huge_page_capacity(dir.path(), buddy, 2 << 20, 4096);
        assert!(
            text.contains("node 0: ") && text.contains(" free, 3 free 2M blocks"),
            "{text}"
        );
        assert!(
            text.contains(" free, 0 free 2M blocks, hugetlb 3/4 free"),
            "{text}"
        );
        // 16 KiB pages: a 32 MiB PMD block is order 11 (2048 pages); node 0's order-9
        // and order-10 blocks are too small, an order-12 block is two.
        let buddy = "Node 0, zone   Normal 5 5 5 5 5 5 5 5 5 1 1 0 1\nNode 1, zone   Normal 9 9 9 9 9 9 9 9 9 0 0 0 0\n";
        let text = huge_page_capacity(dir.path(), buddy, 32 << 20, 16 << 10);
        assert!(text.contains(" free, 2 free 32M blocks"), "{text}");
    }

    #[test]
    fn a_faulted_buffer_is_on_a_node_this_machine_has() {
        let len = 1 << 20;
        let page = crate::pages::base_page();
        let mut v = vec![1u8; len + page];
        let addr = (v.as_mut_ptr() as usize).next_multiple_of(page);
        let status = page_nodes(addr, len).unwrap();
        let topo = Topology::current();
        let node = status[0];
        assert!(topo.nodes.iter().any(|n| n.id as i32 == node), "{status:?}");
        assert_eq!(local_share(&status, node as u32), Some(1.0));
    }
}
