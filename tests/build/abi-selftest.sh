#!/bin/bash
# Proves the ABI gate (abi/abi.sh) can fail. From the library's own sources it
# builds throwaway copies of libthinp.so in a temporary directory, each with one
# change, and checks the gate's verdict on each against a baseline of the
# unchanged copy:
#   a member inserted before the end of a *_ops/*_options struct -> fails
#   a member appended at its end                                  -> passes
#   an exported symbol removed from the version script            -> fails
#   a new function in a new version node                          -> passes
#   the unchanged library without debug info                      -> fails
# The copies are built at -O0 straight from the sources, outside make, so the
# test costs a few compiles and never touches the real build.
set -u
. "${THINP_SRCDIR:?run me from make check}/tests/build/lib.sh"

# A short run (make distcheck's) and a sanitizer build leave it out: it
# proves abi/abi.sh, the same in the tarball, with copies built the same in
# every configuration, and costs several library builds.
[ -z "${THINP_TEST_SHORT:-}" ] || skip "THINP_TEST_SHORT is set"
[ -z "${THINP_SAN_FLAGS:-}" ] || skip "a sanitizer build (the normal build runs it)"
command -v "${ABIDIFF:-abidiff}" >/dev/null || skip "abidiff not installed (abigail-tools)"
command -v "${ABIDW:-abidw}" >/dev/null || skip "abidw not installed (abigail-tools)"
[ -n "${THINP_LIB_SOURCES:-}" ] || fail "THINP_LIB_SOURCES is empty"

make_tmpdir
abi=$THINP_SRCDIR/abi/abi.sh
suppr=$THINP_SRCDIR/abi/libthinp.suppr
map=$THINP_SRCDIR/lib/libthinp.map

# The struct to mutate: the first caller-filled, growable struct in the headers.
hdr=$(grep -lE '^typedef struct thinp_[a-z0-9_]*_(ops|options) \{' \
	"$THINP_SRCDIR"/include/libthinp/*.h | head -n 1)
[ -n "$hdr" ] || fail "no 'typedef struct thinp_*_ops|_options {' in include/libthinp"
st=$(grep -oE '^typedef struct thinp_[a-z0-9_]*_(ops|options) \{' "$hdr" | head -n 1 |
	awk '{print $3}')
echo "mutating struct $st in $(basename "$hdr")"

# headers VARIANT AWK-PROGRAM: a copy of include/ with the struct edited.
headers() {
	mkdir -p "$tmp/$1" && cp -r "$THINP_SRCDIR/include" "$tmp/$1/" || fail "copy headers"
	[ -n "$2" ] || return 0
	awk -v st="$st" "$2" "$hdr" >"$tmp/$1/include/libthinp/$(basename "$hdr")" ||
		fail "edit $hdr"
}

# compile VARIANT: objects from every library source against VARIANT's headers.
compile() {
	local f o
	mkdir -p "$tmp/$1/obj"
	for f in $THINP_LIB_SOURCES; do
		case $f in *.c) ;; *) continue ;; esac
		o=$tmp/$1/obj/$(echo "$f" | tr / _).o
		${CC:-cc} -c -fPIC -g -O0 -w -std=gnu11 -pthread -fvisibility=hidden \
			-Wno-error=int-conversion -Wno-error=incompatible-pointer-types \
			${THINP_DEFS:-} -I"$tmp/$1/include" -I"$THINP_SRCDIR/lib" \
			-I"$THINP_BUILDDIR" "$THINP_SRCDIR/$f" -o "$o" || fail "compile $f ($1)"
	done
}

# link VARIANT MAP [extra objects]: libthinp.so from VARIANT's objects.
link() {
	local v=$1 m=$2
	shift 2
	${CC:-cc} -shared -g -pthread -Wl,-soname,libthinp.so.1 -Wl,--version-script="$m" \
		-o "$tmp/$v/libthinp.so" "$tmp"/base/obj/*.o "$@" || fail "link ($v)"
}
link_own() {
	${CC:-cc} -shared -g -pthread -Wl,-soname,libthinp.so.1 -Wl,--version-script="$map" \
		-o "$tmp/$1/libthinp.so" "$tmp/$1"/obj/*.o || fail "link ($1)"
}

# gate VARIANT EXPECT(pass|fail) WHAT
gate() {
	local rc
	bash "$abi" check "$tmp/$1/libthinp.so" "$tmp/$1/include/libthinp" \
		"$tmp/abi/libthinp.abi" "$suppr" >"$tmp/$1.out" 2>&1
	rc=$?
	if [ "$2" = pass ] && [ $rc -eq 0 ]; then
		ok "$3: gate passes"
	elif [ "$2" = fail ] && [ $rc -ne 0 ]; then
		ok "$3: gate fails"
	else
		sed 's/^/    /' "$tmp/$1.out"
		not_ok "$3: gate should $2 but exited $rc"
	fi
}

# The unchanged library and its baseline.
headers base ""
compile base
link_own base
mkdir -p "$tmp/abi"
bash "$abi" baseline "$tmp/base/libthinp.so" "$tmp/base/include/libthinp" \
	"$tmp/abi/libthinp.abi" >/dev/null || fail "abidw on the unchanged copy"
gate base pass "unchanged library"

# A member inserted right after the opening brace (every offset moves).
headers inserted '{ print } $0 ~ "^typedef struct " st " \\{" { print "\tuint32_t abi_selftest_inserted;" }'
compile inserted
link_own inserted
gate inserted fail "member inserted at the start of $st"

# A member appended before the closing brace.
headers appended '$0 ~ "^} " st ";" { print "\tuint32_t abi_selftest_appended;" } { print }'
compile appended
link_own appended
gate appended pass "member appended at the end of $st"

# An exported symbol dropped from the version script.
sym=$(awk '/^[ \t]*thinp_[a-z0-9_]*;/ { sub(/;.*/, ""); gsub(/[ \t]/, ""); print; exit }' "$map")
[ -n "$sym" ] || fail "no symbol in $map"
headers removed ""
grep -v "^[[:space:]]*$sym;" "$map" >"$tmp/removed.map"
link removed "$tmp/removed.map"
gate removed fail "symbol $sym removed"

# A new function, declared in a header and exported from a new version node.
headers added ""
cat >>"$tmp/added/include/libthinp/common.h" <<'EOF'
THINP_API int thinp_abi_selftest_added(int x);
EOF
printf '#include <libthinp/common.h>\nint thinp_abi_selftest_added(int x) { return x + 1; }\n' \
	>"$tmp/added.c"
${CC:-cc} -c -fPIC -g -O0 -fvisibility=hidden -I"$tmp/added/include" "$tmp/added.c" \
	-o "$tmp/added.o" || fail "compile the added function"
{ cat "$map"; printf 'LIBTHINP_1.999 {\nglobal:\n\tthinp_abi_selftest_added;\n} %s;\n' \
	"$(grep -oE '^LIBTHINP_1\.[0-9]+' "$map" | tail -n 1)"; } >"$tmp/added.map"
link added "$tmp/added.map" "$tmp/added.o"
gate added pass "function added in a new node"

# The unchanged library with its debug info stripped: the gate must refuse.
headers stripped ""
objcopy --strip-debug "$tmp/base/libthinp.so" "$tmp/stripped/libthinp.so" || fail "objcopy"
gate stripped fail "library without debug info"

finish
