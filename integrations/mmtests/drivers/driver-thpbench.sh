# shellcheck shell=bash
# Quoted: an empty THPBENCH_DURATION (the workload's own) must stay an argument.
run_bench() {
	"$SCRIPTDIR/shellpacks/shellpack-bench-thpbench" \
		--workload	"$THPBENCH_WORKLOAD"	\
		--duration	"$THPBENCH_DURATION"	\
		--iterations	"$THPBENCH_ITERATIONS"
	return $?
}
