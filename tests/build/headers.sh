#!/bin/bash
# Public header hygiene, for every header in include/libthinp/ (a new header is
# covered as soon as it exists):
#   - each compiles alone, included twice, as C99 with -pedantic -Wall -Wextra
#     -Wstrict-prototypes -Werror, and as C++11 with -Wall -Wextra -Werror;
#   - each *_INIT macro compiles as the initializer of its type;
#   - every header names its ABI tier on an " * ABI tier: NAME" line;
#   - the umbrella thinp.h includes every installed header of the stable tier
#     (pkginclude_HEADERS, from the Makefile) and none of another tier, so a
#     program gets meta.h or testing.h only by asking for it.
set -u
. "${THINP_SRCDIR:?run me from make check}/tests/build/lib.sh"

[ -n "${THINP_PUBLIC_HEADERS:-}" ] || fail "THINP_PUBLIC_HEADERS is empty"
CC=${CC:-cc}
CXX=${CXX:-c++}
command -v "${CXX%% *}" >/dev/null || skip "no C++ compiler ($CXX): install g++"
make_tmpdir
inc=$THINP_SRCDIR/include

# compile LANG FILE: syntax-check FILE as C99 or C++11.
compile() {
	if [ "$1" = c ]; then
		$CC -std=c99 -pedantic -Wall -Wextra -Wstrict-prototypes -Werror \
			-fsyntax-only -I"$inc" -x c "$2"
	else
		$CXX -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only \
			-I"$inc" -x c++ "$2"
	fi
}

for f in "$inc"/libthinp/*.h; do
	h=${f##*/}
	src=$tmp/${h%.h}.c
	{
		printf '#include <libthinp/%s>\n#include <libthinp/%s>\n' "$h" "$h"
		# A struct with an INIT macro: THINP_FOO_OPS_INIT initializes thinp_foo_ops.
		for m in $(grep -oE '^#define THINP_[A-Z0-9_]+_INIT\b' "$inc/libthinp/$h" |
			awk '{print $2}'); do
			t=$(echo "${m%_INIT}" | tr A-Z a-z)
			grep -qE "^} $t;" "$inc/libthinp/$h" &&
				printf '%s header_test_%s = %s;\n' "$t" "$t" "$m"
		done
		echo 'int header_test_main(void);'
		echo 'int header_test_main(void) { return 0; }'
	} >"$src"
	for lang in c c++; do
		if out=$(compile $lang "$src" 2>&1); then
			ok "$h alone as $lang"
		else
			printf '%s\n' "$out" | sed 's/^/    /' >&2
			not_ok "$h alone as $lang"
		fi
	done
done

# tier H: the ABI tier a header declares ("stable", "metadata", "testing").
tier() {
	sed -n 's/^ \* ABI tier: \([a-z]*\).*/\1/p' "$inc/libthinp/$1" | head -n 1
}

# Every header in include/libthinp/ is installed, names its tier, and is in
# the umbrella header exactly when it is of the stable tier.
before=$_thinp_failed
for f in "$inc"/libthinp/*.h; do
	h=${f##*/}
	case " $THINP_PUBLIC_HEADERS " in
	*"/libthinp/$h "*) ;;
	*) not_ok "include/libthinp/$h is not installed (not in pkginclude_HEADERS)"
	   continue ;;
	esac
	[ "$h" = thinp.h ] && continue
	t=$(tier "$h")
	in_umbrella=no
	grep -q "^#include <libthinp/$h>" "$inc/libthinp/thinp.h" && in_umbrella=yes
	case $t:$in_umbrella in
	stable:yes | metadata:no | testing:no) ;;
	stable:no) not_ok "the umbrella thinp.h does not include <libthinp/$h> (stable tier)" ;;
	metadata:yes | testing:yes) not_ok "the umbrella thinp.h includes <libthinp/$h> of the $t tier" ;;
	*) not_ok "include/libthinp/$h names no ABI tier (a ' * ABI tier: stable|metadata|testing' line)" ;;
	esac
done
[ $_thinp_failed = "$before" ] &&
	ok "every installed header names its tier; thinp.h includes exactly the stable ones"

finish
