#!/bin/bash
# The installed library, used the way a program outside the tree uses it.
#
#   install-test.sh BUILDDIR   `make install DESTDIR=<tmp>` from BUILDDIR, then test
#   (from `make installcheck`, which distcheck runs: THINP_INSTALLED_PCDIR names
#    the installed pkgconfig directory and THINP_DESTDIR the DESTDIR, if any)
#
# Checks: the install holds exactly the public headers, libthinp.so with SONAME
# libthinp.so.1 and libthinp.pc; tests/build/client.c and examples/*_demo.c,
# compiled and linked with nothing but `pkg-config --cflags --libs libthinp`,
# link dynamically against libthinp.so.1 and run. Where nbdkit's plugin
# headers are installed, the nbdkit plugin (frontends/nbdkit) builds the same
# way and nbdkit loads it; and a build that installed the plugin put it there.
# Where fuse3 is installed, thinp-fuse (frontends/fuse/*.c) builds the same
# way and runs, and a build that made it installed it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
THINP_SRCDIR=$srcdir
. "$here/lib.sh"
make_tmpdir
CC=${CC:-cc}

if [ -n "${THINP_INSTALLED_PCDIR:-}" ]; then
	root=${THINP_DESTDIR:-}
	pcdir=$THINP_INSTALLED_PCDIR
else
	build=${1:?usage: install-test.sh BUILDDIR}
	root=$tmp/root
	${MAKE:-make} -C "$build" install DESTDIR="$root" >"$tmp/install.log" 2>&1 || {
		tail -n 30 "$tmp/install.log"
		fail "make install DESTDIR=$root"
	}
	pcdir=$(dirname "$(find "$root" -name libthinp.pc | head -n 1)")
fi
[ -f "$pcdir/libthinp.pc" ] || fail "no libthinp.pc under $pcdir"
ok "libthinp.pc installed in $pcdir"

export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_LIBDIR=$pcdir
[ -n "$root" ] && export PKG_CONFIG_SYSROOT_DIR=$root
cflags=$(pkg-config --cflags libthinp) || fail "pkg-config --cflags libthinp"
libs=$(pkg-config --libs libthinp) || fail "pkg-config --libs libthinp"
libdir=$(pkg-config --libs-only-L libthinp | sed 's/^ *-L//; s/ .*//')
incdir=$(pkg-config --cflags-only-I libthinp | sed 's/^ *-I//; s/ .*//')
echo "pkg-config: $cflags $libs"
[ -d "$libdir" ] && [ -d "$incdir/libthinp" ] || fail "pkg-config points at $libdir, $incdir"

# The headers installed are exactly those include/libthinp/Makefile.inc lists
# (a draft header not listed yet is not installed): none missing, no internal
# header leaked.
want=$(grep -oE 'include/libthinp/[A-Za-z0-9_]+\.h' "$srcdir/include/libthinp/Makefile.inc" |
	sed 's|.*/||' | sort | tr '\n' ' ')
have=$(cd "$incdir/libthinp" && ls | sort | tr '\n' ' ')
[ "$want" = "$have" ] && ok "installed headers: $have" ||
	not_ok "installed headers are '$have', expected '$want'"

soname=$(readelf -d "$libdir/libthinp.so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libthinp.so.1 ] && ok "SONAME $soname" || not_ok "SONAME is '$soname', expected libthinp.so.1"

progs="$srcdir/tests/build/client.c"
for p in "$srcdir"/examples/*_demo.c; do
	[ -f "$p" ] && progs="$progs $p"
done
for p in $progs; do
	name=$(basename "$p" .c)
	# shellcheck disable=SC2086
	if ! $CC -Wall -Werror $cflags "$p" -o "$tmp/$name" $libs 2>"$tmp/$name.err"; then
		sed 's/^/    /' "$tmp/$name.err" >&2
		not_ok "$name: compile and link with pkg-config only"
		continue
	fi
	readelf -d "$tmp/$name" | grep -q 'NEEDED.*\[libthinp\.so\.1\]' ||
		not_ok "$name does not link libthinp.so.1 dynamically"
	mkdir -p "$tmp/run-$name"
	if (cd "$tmp/run-$name" && LD_LIBRARY_PATH=$libdir "$tmp/$name") >"$tmp/$name.out" 2>&1 </dev/null; then
		ok "$name: built with pkg-config only, runs against the installed library"
	else
		sed 's/^/    /' "$tmp/$name.out" >&2
		not_ok "$name: run against the installed library"
	fi
done

nbdkit_cflags=$(env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_PATH -u PKG_CONFIG_SYSROOT_DIR \
	pkg-config --cflags nbdkit 2>/dev/null) && command -v nbdkit >/dev/null &&
	have_nbdkit=yes || have_nbdkit=no
if [ $have_nbdkit = yes ]; then
	# shellcheck disable=SC2086
	if ! $CC -Wall -Werror -fPIC -shared $cflags $nbdkit_cflags "$srcdir"/frontends/nbdkit/*.c \
		-o "$tmp/nbdkit-thinp-plugin.so" $libs -pthread 2>"$tmp/plugin.err"; then
		sed 's/^/    /' "$tmp/plugin.err" >&2
		not_ok "nbdkit plugin: compile and link with pkg-config only"
	elif LD_LIBRARY_PATH=$libdir nbdkit --dump-plugin "$tmp/nbdkit-thinp-plugin.so" 2>&1 |
		grep -qx 'name=thinp'; then
		ok "nbdkit plugin: built with pkg-config only, nbdkit loads it"
	else
		not_ok "nbdkit plugin: nbdkit --dump-plugin fails on the pkg-config build"
	fi
	if [ -z "${THINP_INSTALLED_PCDIR:-}" ] && [ -n "$(find "$root" -name '*.so' -path '*nbdkit*')" ]; then
		ok "nbdkit plugin installed: $(find "$root" -name 'nbdkit-thinp-plugin.so' | sed "s|^$root||")"
	fi
else
	echo "skip: nbdkit plugin (no nbdkit-plugin-dev)"
fi

# The FUSE front-end builds from its sources with pkg-config alone too
# (libthinp from the install, fuse3 from the system), and runs.
fuse_pc() { env -u PKG_CONFIG_PATH -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR pkg-config "$@"; }
if fuse_pc --exists 'fuse3 >= 3.12'; then
	fcflags=$(fuse_pc --cflags fuse3) flibs=$(fuse_pc --libs fuse3)
	# shellcheck disable=SC2086
	if $CC -Wall -Werror -D_GNU_SOURCE $cflags $fcflags "$srcdir"/frontends/fuse/*.c \
		-o "$tmp/thinp-fuse" $libs $flibs -pthread 2>"$tmp/thinp-fuse.err"; then
		readelf -d "$tmp/thinp-fuse" | grep -q 'NEEDED.*\[libthinp\.so\.1\]' ||
			not_ok "thinp-fuse does not link libthinp.so.1 dynamically"
		if LD_LIBRARY_PATH=$libdir "$tmp/thinp-fuse" --version >"$tmp/thinp-fuse.out" 2>&1; then
			ok "thinp-fuse: built with pkg-config only, runs against the installed library"
		else
			sed 's/^/    /' "$tmp/thinp-fuse.out" >&2
			not_ok "thinp-fuse --version against the installed library"
		fi
	else
		sed 's/^/    /' "$tmp/thinp-fuse.err" >&2
		not_ok "thinp-fuse: compile and link with pkg-config only"
	fi
	# A build that made thinp-fuse installs it beside thinp.
	if [ -z "${THINP_INSTALLED_PCDIR:-}" ] && [ -e "$build/frontends/fuse/thinp-fuse" ]; then
		[ -x "$(dirname "$libdir")/bin/thinp-fuse" ] && ok "thinp-fuse installed" ||
			not_ok "thinp-fuse not installed with the library"
	fi
else
	echo "skip - thinp-fuse: fuse3 >= 3.12 not found by pkg-config"
fi

finish
