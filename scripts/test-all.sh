#!/bin/bash
# The whole libthinp test suite, as CI runs it (.ci/run installs the packages
# first). Run from anywhere inside a clone; builds out of tree next to the
# sources:
#   build/        normal build: make check, the install test, the ABI gate,
#                 make distcheck (which builds, installs and tests the
#                 tarball again, with THINP_TEST_SHORT=20: every test runs,
#                 the random and exhaustive ones a 20th as long, the ABI
#                 gate's self-test not at all; the full run was build/'s),
#                 and, with WITH_VALGRIND=1, make check-valgrind
#   build-san/    --enable-sanitizers (ASan + UBSan): make check (the ABI
#                 gate's self-test skips there: build/ ran it)
#   build-tsan/   --enable-tsan (ThreadSanitizer): make check of TSAN_TESTS,
#                 the pool and io tests and the other multi-threaded ones,
#                 with THINP_TEST_SHORT=10 (single-threaded random runs
#                 shortened: TSan slows them ~30x and finds nothing there)
#   build-afl/    CC=afl-clang-fast: each fuzz target for FUZZ_SECONDS (10)
# Every step's full output is in build-logs/<step>.log; a failing step prints
# its tail. The last line is "N passed, N failed", counting test programs and
# scripts (each automake test of each `make check`, each fuzz target) and the
# steps that are one check each (install test, ABI gate, distcheck...).
# Exits non-zero if anything failed.
#
# Environment: JOBS (2), FUZZ_SECONDS (10); SKIP_FUZZ=1, SKIP_SAN=1,
# SKIP_TSAN=1, SKIP_DISTCHECK=1 leave a step out (it then counts as skipped); WITH_VALGRIND=1
# adds make check-valgrind (slow: the model tests run 20-50 times slower).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
JOBS=${JOBS:-2}
logs=$top/build-logs
mkdir -p "$logs"
passed=0
failed=0
skipped=0
failures=
start_all=$(date +%s)

note() { printf '\n=== %s\n' "$*"; }
add_fail() { failed=$((failed + 1)); failures="$failures $1"; }

# step NAME COMMAND...: run COMMAND with its output in build-logs/NAME.log;
# returns its status, prints the tail on failure.
step() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	"$@" >"$logs/$name.log" 2>&1 </dev/null
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "--- $name failed (exit $rc); last lines of build-logs/$name.log:"
		tail -n 40 "$logs/$name.log" | sed 's/^/    /'
	fi
	echo "    ($name: $(($(date +%s) - t0))s)"
	return $rc
}

# one NAME COMMAND...: a step that is a single check.
one() {
	local name=$1
	if step "$@"; then
		passed=$((passed + 1))
		echo "PASS: $name"
	elif [ $? -eq 77 ]; then
		skipped=$((skipped + 1))
		echo "SKIP: $name"
	else
		add_fail "$name"
		echo "FAIL: $name"
	fi
}

# tally NAME BUILDDIR STATUS: count the automake results of a `make check`.
tally() {
	local name=$1 log=$2/test-suite.log rc=$3 p f s
	if [ ! -f "$log" ]; then
		add_fail "$name"
		echo "FAIL: $name (no test-suite.log: the build or the test harness failed)"
		return
	fi
	grep -E '^(PASS|FAIL|ERROR|SKIP|XFAIL|XPASS):' "$logs/$name.log" | sed 's/^/  /'
	sed -n '/^# TOTAL/,/^# ERROR/p' "$log" | sed 's/^/  /'
	p=$(awk '/^# (PASS|XFAIL):/ { n += $3 } END { print n + 0 }' "$log")
	f=$(awk '/^# (FAIL|XPASS|ERROR):/ { n += $3 } END { print n + 0 }' "$log")
	s=$(awk '/^# SKIP:/ { n += $3 } END { print n + 0 }' "$log")
	passed=$((passed + p))
	skipped=$((skipped + s))
	failed=$((failed + f))
	[ "$f" -gt 0 ] && failures="$failures $name:$(awk '/^(FAIL|XPASS|ERROR):/ { printf " %s", $2 }' "$log")"
	if [ "$f" -eq 0 ] && [ "$rc" -ne 0 ]; then
		add_fail "$name"
		echo "FAIL: $name (make check exited $rc with no failing test)"
	fi
}

# configure_build DIR CONFIGURE-ARGS...: configure (once) and make in DIR.
configure_build() {
	local dir=$1
	shift
	mkdir -p "$dir" && cd "$dir" &&
		{ [ -f Makefile ] || ../configure "$@"; } && make -j"$JOBS"
	local rc=$?
	cd "$top"
	return $rc
}

# check BUILDDIR TARGET: make TARGET in BUILDDIR (for tally).
check() {
	make -C "$1" -j"$JOBS" "$2"
}

# The ThreadSanitizer run: every test of tests/pool and tests/io, and the
# multi-threaded tests of the layers below the pool, and the origin workflows'
# (writers racing hydration, jobs paused from another thread), and thinp
# delta read in parts on threads (delta_live.sh: --threads 4 while the pool
# changes). Only these programs are
# built (check_PROGRAMS), which keeps the step to a few minutes.
TSAN_TESTS="tests/pool/test_pool tests/pool/test_pool_model tests/pool/test_pool_model_real
	tests/pool/test_pool_threads tests/pool/test_pool_meta tests/pool/test_pool_nomem
	tests/io/test_io tests/io/test_backends tests/io/test_fault tests/io/test_file
	tests/block/test_bm tests/thin/test_meta tests/workflow/test_origin_jobs tests/workflow/test_migrate
	tests/workflow/test_replicate
	tests/tool/delta_live.sh"

check_tsan() {
	local t
	t=$(echo $TSAN_TESTS)
	THINP_TEST_SHORT=10 make -C build-tsan -j"$JOBS" check TESTS="$t" check_PROGRAMS="$t"
}

note "autoreconf"
if ! step autoreconf autoreconf -fi; then
	add_fail autoreconf
	echo "$passed passed, $failed failed"
	exit 1
fi

note "normal build + make check (build/)"
if step build configure_build build; then
	rm -f build/test-suite.log
	step check check build check
	tally check build $?

	note "install test: make install DESTDIR=tmp, a program built with pkg-config only"
	one install-test make -C build check-install

	note "kernel VM tests (Debian's kernel under qemu TCG: dm-thin reads and writes our pools and the workflows' pools; thinp.ko serves one)"
	one kernel-vm-dmthin env THINP_BUILDDIR="$top/build" bash tests/frontends/kernel/dmthin_interop.sh
	one kernel-vm-kmod env THINP_BUILDDIR="$top/build" bash tests/frontends/kernel/kmod_pool.sh
	one kernel-vm-kmod-crash env THINP_BUILDDIR="$top/build" bash tests/frontends/kernel/kmod_crash.sh
	one kernel-vm-workflows env THINP_BUILDDIR="$top/build" bash tests/frontends/kernel/workflows_dmthin.sh

	note "ABI gate: abidiff against abi/libthinp.abi"
	if command -v abidiff >/dev/null; then
		one abi-gate make -C build check-abi
	else
		skipped=$((skipped + 1))
		echo "SKIP: abi-gate (abidiff not installed)"
	fi

	if [ -z "${SKIP_DISTCHECK:-}" ]; then
		note "make distcheck (the tarball builds, tests and installs on its own)"
		one distcheck env THINP_TEST_SHORT=20 make -C build -j"$JOBS" distcheck
		if [ -e .git ]; then
			note "every file tracked by git is in the tarball"
			one dist-complete bash -c '
				tarball=$(ls build/libthinp-*.tar.gz 2>/dev/null | head -n 1)
				[ -n "$tarball" ] || { echo "no tarball in build/"; exit 1; }
				prefix=$(basename "$tarball" .tar.gz)/
				missing=$(comm -23 <(git ls-files | grep -vE "^(\.gitignore|\.ci/|m4/\.keep$)" | sort) \
					<(tar tzf "$tarball" | sed "s|^$prefix||" | sort))
				[ -z "$missing" ] && exit 0
				echo "tracked by git but not in the tarball (add to EXTRA_DIST, noinst_HEADERS, ... in the Makefile.inc beside them):"
				printf "  %s\n" $missing
				exit 1'
		fi
	else
		skipped=$((skipped + 1))
	fi

	if [ -n "${WITH_VALGRIND:-}" ] && command -v valgrind >/dev/null; then
		note "make check-valgrind (test binaries under valgrind)"
		rm -f build/test-suite.log
		step check-valgrind check build check-valgrind
		tally check-valgrind build $?
	else
		echo "(make check-valgrind not run: WITH_VALGRIND=1 adds it)"
	fi
else
	add_fail build
fi

if [ -z "${SKIP_SAN:-}" ]; then
	note "sanitizers: --enable-sanitizers (ASan + UBSan) + make check (build-san/)"
	if step build-san configure_build build-san --enable-sanitizers; then
		rm -f build-san/test-suite.log
		step check-san check build-san check
		tally check-san build-san $?
	else
		add_fail build-san
	fi
else
	skipped=$((skipped + 1))
fi

if [ -z "${SKIP_TSAN:-}" ]; then
	note "ThreadSanitizer: --enable-tsan + make check of the pool, io and threaded tests (build-tsan/)"
	if step build-tsan configure_build build-tsan --enable-tsan; then
		rm -f build-tsan/test-suite.log
		step check-tsan check_tsan
		tally check-tsan build-tsan $?
	else
		add_fail build-tsan
	fi
else
	skipped=$((skipped + 1))
fi

if [ -z "${SKIP_FUZZ:-}" ]; then
	note "fuzz: each target ${FUZZ_SECONDS:-10}s with AFL++ (build-afl/)"
	step fuzz bash fuzz/run-briefly.sh "${FUZZ_SECONDS:-10}"
	rc=$?
	grep -E '^(PASS|FAIL|SKIP):' "$logs/fuzz.log" | sed 's/^/  /'
	if [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
	else
		p=$(grep -c '^PASS:' "$logs/fuzz.log")
		f=$(grep -c '^FAIL:' "$logs/fuzz.log")
		[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
		passed=$((passed + p))
		failed=$((failed + f))
		[ "$f" -gt 0 ] && failures="$failures fuzz"
	fi
else
	skipped=$((skipped + 1))
fi

note "summary"
echo "total time $(($(date +%s) - start_all))s; logs in build-logs/"
[ "$skipped" -gt 0 ] && echo "$skipped skipped"
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
