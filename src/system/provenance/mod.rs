//! Provenance: what a result needs beyond the workload to say where it came from (the
//! kernel build, the machine, the memory-management settings), read once per run into
//! `system`. What cannot be read is said in `system.not_recorded`, never left blank.

pub mod kernel;
pub mod machine;
pub mod mm;

use crate::result::SystemInfo;

/// Fills in the kernel build, the machine and the mm settings of `system`.
pub fn record(system: &mut SystemInfo) {
    let k = &mut system.kernel;
    match kernel::build_id() {
        Ok(id) => k.build_id = Some(id),
        Err(why) => system.not_recorded.push(format!("kernel build-id: {why}")),
    }
    match kernel::compiler() {
        Ok(c) => k.compiler = Some(c),
        Err(why) => system.not_recorded.push(format!("kernel compiler: {why}")),
    }
    match kernel::config(&k.release) {
        Ok(c) => k.config = Some(c),
        Err(why) => system.not_recorded.push(format!("kernel config: {why}")),
    }
    let (machine, gaps) = machine::machine_info();
    system.machine = Some(machine);
    system.not_recorded.extend(gaps);
    let mm = mm::mm_settings();
    if !mm.damon.unreadable.is_empty() {
        system
            .not_recorded
            .push(format!("DAMON schemes: {}", mm.damon.unreadable));
    }
    system.mm = Some(mm);
}
