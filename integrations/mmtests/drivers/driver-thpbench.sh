run_bench() {
	$SCRIPTDIR/shellpacks/shellpack-bench-thpbench \
		--workload	$THPBENCH_WORKLOAD	\
		--duration	$THPBENCH_DURATION	\
		--iterations	$THPBENCH_ITERATIONS
	return $?
}
