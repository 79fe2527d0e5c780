use super::*;

/// A synthetic tree; returns its topology (the tempdir lives as long as the test).
fn fake(cpus: &[(usize, u32, u32, u32)], offline: &[usize]) -> (tempfile::TempDir, Topology) {
    let dir = tempfile::tempdir().unwrap();
    write_fake_sysfs(dir.path(), cpus, offline).unwrap();
    let topo = Topology::read(dir.path());
    (dir, topo)
}

fn online(t: &Topology) -> Vec<usize> {
    t.cpus.iter().map(|c| c.cpu).collect()
}

/// 1 package, 2 cores x 2 threads, numbered as x86 does: 0,1 first threads, 2,3 siblings.
const SMT_2X2: &[(usize, u32, u32, u32)] =
    &[(0, 0, 0, 0), (1, 0, 1, 0), (2, 0, 0, 0), (3, 0, 1, 0)];
/// 2 packages, one node each, 4 cores each, no SMT.
const TWO_NODES: &[(usize, u32, u32, u32)] = &[
    (0, 0, 0, 0),
    (1, 0, 1, 0),
    (2, 0, 2, 0),
    (3, 0, 3, 0),
    (4, 1, 0, 1),
    (5, 1, 1, 1),
    (6, 1, 2, 1),
    (7, 1, 3, 1),
];

#[test]
fn smt_2x2_default_is_one_worker_per_core_and_siblings_keep_house() {
    let (_d, t) = fake(SMT_2X2, &[]);
    assert_eq!(
        (t.core_count(), t.threads_per_core(), t.package_count()),
        (2, 2, 1)
    );
    let all = online(&t);
    let cores = select(&t, &all, &CpuSpec::Cores, 0).unwrap();
    assert_eq!(cores.cpus, vec![0, 1]);
    assert!(cores.why.contains("one per physical core"), "{}", cores.why);
    assert_eq!(
        select(&t, &all, &CpuSpec::Threads, 0).unwrap().cpus,
        vec![0, 1, 2, 3]
    );
    let three = select(&t, &all, &CpuSpec::Cores, 3).unwrap();
    assert_eq!(three.cpus, vec![0, 1, 2]);
    assert!(three.why.contains("SMT siblings"), "{}", three.why);
    assert!(select(&t, &all, &CpuSpec::Cores, 5).is_err());
    assert_eq!(
        housekeeping(&t, &all, &[0, 1]),
        (vec![2, 3], "SMT siblings of workers")
    );
    assert_eq!(housekeeping(&t, &all, &[0]), (vec![1, 3], "free cores"));
    assert_eq!(housekeeping(&t, &all, &all).0, Vec::<usize>::new());
}

#[test]
fn two_nodes_threads_spread_over_nodes_and_node_spec_stays_on_its_node() {
    let (_d, t) = fake(TWO_NODES, &[]);
    assert_eq!(t.nodes.len(), 2);
    assert_eq!(t.nodes[1].cpus, vec![4, 5, 6, 7]);
    assert_eq!(t.nodes[1].mem_free, Some(512 << 20));
    assert_eq!(t.cpu(6).unwrap().node, 1);
    let all = online(&t);
    assert_eq!(
        select(&t, &all, &CpuSpec::Cores, 2).unwrap().cpus,
        vec![0, 4]
    );
    assert_eq!(
        select(&t, &all, &CpuSpec::Cores, 3).unwrap().cpus,
        vec![0, 1, 4]
    );
    assert_eq!(t.spread_order(&all), vec![0, 4, 1, 5, 2, 6, 3, 7]);
    assert_eq!(
        select(&t, &all, &CpuSpec::Node(1), 0).unwrap().cpus,
        vec![4, 5, 6, 7]
    );
    assert_eq!(
        select(&t, &all, &CpuSpec::Node(1), 2).unwrap().cpus,
        vec![4, 5]
    );
    let err = select(&t, &all, &CpuSpec::Node(2), 0).unwrap_err();
    assert!(
        err.contains("no NUMA node 2") && err.contains("0, 1"),
        "{err}"
    );
    let err = select(&t, &[0, 1], &CpuSpec::Node(1), 0).unwrap_err();
    assert!(err.contains("none of node 1's CPUs"), "{err}");
}

#[test]
fn core_ids_repeat_across_packages_without_merging_cores() {
    let cpus = [(0, 0, 0, 0), (1, 0, 1, 0), (2, 1, 0, 0), (3, 1, 1, 0)];
    let (_d, t) = fake(&cpus, &[]);
    assert_eq!((t.core_count(), t.package_count()), (4, 2));
    let all = online(&t);
    assert_eq!(
        select(&t, &all, &CpuSpec::Cores, 0).unwrap().cpus,
        vec![0, 1, 2, 3]
    );
    // One node, two packages: round-robin over packages.
    assert_eq!(
        select(&t, &all, &CpuSpec::Cores, 2).unwrap().cpus,
        vec![0, 2]
    );
}

#[test]
fn offline_cpus_are_skipped_and_their_core_keeps_its_online_thread() {
    let (_d, t) = fake(SMT_2X2, &[1]);
    assert_eq!(online(&t), vec![0, 2, 3]);
    assert_eq!(t.cpu(3).unwrap().core_threads, vec![3]);
    let all = online(&t);
    assert_eq!(
        select(&t, &all, &CpuSpec::Cores, 0).unwrap().cpus,
        vec![0, 3]
    );
    let err = select(&t, &all, &CpuSpec::List(vec![1]), 0).unwrap_err();
    assert!(err.contains("CPU 1 is not online"), "{err}");
}

#[test]
fn holes_in_numbering() {
    let cpus = [(0, 0, 0, 0), (2, 0, 1, 0), (5, 1, 0, 1), (9, 1, 1, 1)];
    let (_d, t) = fake(&cpus, &[]);
    let all = online(&t);
    assert_eq!(all, vec![0, 2, 5, 9]);
    assert_eq!(
        select(&t, &all, &CpuSpec::Cores, 3).unwrap().cpus,
        vec![0, 2, 5]
    );
    assert_eq!(housekeeping(&t, &all, &[0, 5]), (vec![2, 9], "free cores"));
    // The affinity mask narrows the offer.
    assert_eq!(
        select(&t, &[2, 9], &CpuSpec::Cores, 0).unwrap().cpus,
        vec![2, 9]
    );
}

#[test]
fn spec_parsing() {
    assert_eq!(CpuSpec::parse("").unwrap(), CpuSpec::Cores);
    assert_eq!(CpuSpec::parse("cores").unwrap(), CpuSpec::Cores);
    assert_eq!(CpuSpec::parse("threads").unwrap(), CpuSpec::Threads);
    assert_eq!(CpuSpec::parse("node:1").unwrap(), CpuSpec::Node(1));
    assert_eq!(
        CpuSpec::parse("0-2,5").unwrap(),
        CpuSpec::List(vec![0, 1, 2, 5])
    );
    let err = CpuSpec::parse("node:x").unwrap_err();
    assert!(err.contains("node:N"), "{err}");
    let err = CpuSpec::parse("core").unwrap_err();
    assert!(err.contains("\"cores\""), "{err}");
}

#[test]
fn this_machine_reads_its_online_cpus() {
    let t = Topology::current();
    assert_eq!(online(&t), crate::system::cpu::online_cpus());
    assert!(!t.nodes.is_empty());
}
