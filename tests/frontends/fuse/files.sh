#!/bin/bash
# thinp-fuse's files one system call at a time: sizes from the volume table,
# reads and writes at the edges, SEEK_DATA/SEEK_HOLE against the mappings,
# punch-hole (whole blocks unmapped, partial ones zeroed), statfs against
# the status line, the control file's errors, read-only volumes, delete of
# an open volume, and that a write survives unmount (commit on exit).
. "$(dirname "$0")/common.sh"

new_pool 1024
"$THINP" create -m "$T/meta" -d "$T/data" --size 4M 0 || fail "thinp create 0"
"$THINP" create -m "$T/meta" -d "$T/data" --size 1M --read-only 5 || fail "thinp create 5"
"$THINP" message -m "$T/meta" 'create_thin 7' || fail "create_thin 7"
head -c 300K /dev/urandom >"$T/origin"
"$THINP" create -m "$T/meta" -d "$T/data" --size 1M --origin "$T/origin" 8 ||
	fail "thinp create 8 --origin"
fuse_mount
[ "$(ls "$MNT" | tr '\n' ' ')" = "0 5 8 " ] ||
	fail "expected files 0, 5 and 8 (7 has no size), got: $(ls "$MNT")"

step "system calls"
python3 - "$MNT" "$T/origin" <<'EOF' || fail "system call checks"
import errno, os, sys
mnt = sys.argv[1]
B = 65536
def expect_err(e, f, *a):
    try:
        f(*a)
    except OSError as x:
        assert x.errno == e, (f, a, x)
        return
    raise AssertionError("%s%s succeeded, expected %s" % (f.__name__, a, errno.errorcode[e]))
def control(msg):
    fd = os.open(mnt + "/.control", os.O_WRONLY)
    try:
        os.write(fd, msg.encode())
    finally:
        os.close(fd)

fd = os.open(mnt + "/0", os.O_RDWR)
assert os.fstat(fd).st_size == 4 << 20
assert os.fstat(fd).st_blocks == 0
assert os.pread(fd, 100, 0) == bytes(100)
# Empty volume: all hole.
expect_err(errno.ENXIO, os.lseek, fd, 0, os.SEEK_DATA)
assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
assert os.lseek(fd, 12345, os.SEEK_HOLE) == 12345
# Writes provision whole blocks: blocks 1 and 3, one byte into block 10.
os.pwrite(fd, b"a" * B, B)
os.pwrite(fd, b"b" * 100, 3 * B + 5)
os.pwrite(fd, b"c", 10 * B)
assert os.fstat(fd).st_blocks * 512 == 3 * B
assert os.lseek(fd, 0, os.SEEK_DATA) == B
assert os.lseek(fd, B + 7, os.SEEK_DATA) == B + 7
assert os.lseek(fd, B, os.SEEK_HOLE) == 2 * B
assert os.lseek(fd, 2 * B, os.SEEK_DATA) == 3 * B
assert os.lseek(fd, 4 * B, os.SEEK_DATA) == 10 * B
assert os.lseek(fd, 10 * B, os.SEEK_HOLE) == 11 * B
expect_err(errno.ENXIO, os.lseek, fd, 11 * B, os.SEEK_DATA)
expect_err(errno.ENXIO, os.lseek, fd, 4 << 20, os.SEEK_HOLE)
# The edges: a read at the end is short, a write past it fails.
assert os.pread(fd, 10, (4 << 20) - 4) == bytes(4)
assert os.pread(fd, 10, 4 << 20) == b""
expect_err(errno.ENOSPC, os.pwrite, fd, b"x", 4 << 20)
assert os.pwrite(fd, b"xyz" * 4, (4 << 20) - 6) == 6
# Punch-hole over blocks 1 (half) .. 3 (partial): block 2 is unmapped
# (it was never mapped), block 1's second half and block 3's first 50
# bytes read as zeroes, the rest stays.
os.pwrite(fd, b"d" * B, 2 * B)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
PUNCH, KEEP, ZERO = 2, 1, 16
def fallocate(mode, off, length):
    if libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
fallocate(PUNCH | KEEP, B + B // 2, 3 * B + 50 - (B + B // 2))
assert os.pread(fd, B // 2, B) == b"a" * (B // 2)
assert os.pread(fd, B // 2, B + B // 2) == bytes(B // 2)
assert os.pread(fd, B, 2 * B) == bytes(B)
assert os.pread(fd, 50, 3 * B) == bytes(50)
assert os.pread(fd, 56, 3 * B + 50) == b"b" * 55 + b"\0"
assert os.lseek(fd, B, os.SEEK_HOLE) == 2 * B, "block 2 should be a hole again"
assert os.lseek(fd, 2 * B, os.SEEK_DATA) == 3 * B
# A whole-block punch unmaps: st_blocks goes down by one block.
before = os.fstat(fd).st_blocks
fallocate(PUNCH | KEEP, 10 * B, B)
assert os.fstat(fd).st_blocks == before - B // 512
assert os.pread(fd, 1, 10 * B) == b"\0"
# Zero range writes zeroes; plain allocation and growing are refused.
fallocate(ZERO | KEEP, B, 100)
assert os.pread(fd, 100, B) == bytes(100)
expect_err(errno.EOPNOTSUPP, fallocate, 0, 0, B)
expect_err(errno.EOPNOTSUPP, fallocate, ZERO, (4 << 20) - B, 2 * B)
# A volume keeps its size.
expect_err(errno.EPERM, os.ftruncate, fd, 1 << 20)
os.ftruncate(fd, 4 << 20)
os.fsync(fd)

# A volume with an external origin reads it where nothing is provisioned
# (zeroes past its end), is all data for SEEK_*, and a punched hole reads
# zeroes, not the origin.
src = open(sys.argv[2], "rb").read()
ofd = os.open(mnt + "/8", os.O_RDWR)
assert os.pread(ofd, 1 << 20, 0) == src + bytes((1 << 20) - len(src))
assert os.lseek(ofd, 0, os.SEEK_DATA) == 0 and os.lseek(ofd, 0, os.SEEK_HOLE) == 1 << 20
os.pwrite(ofd, b"o" * 10, B + 3)
assert os.pread(ofd, 20, B) == src[B:B + 3] + b"o" * 10 + src[B + 13:B + 20]
if libc.fallocate(ofd, PUNCH | KEEP, ctypes.c_long(2 * B), ctypes.c_long(2 * B)) != 0:
    raise OSError(ctypes.get_errno(), "fallocate on 8")
assert os.pread(ofd, 2 * B, 2 * B) == bytes(2 * B)
assert os.pread(ofd, B, 4 * B) == src[4 * B:] + bytes(5 * B - len(src))
os.close(ofd)

# A read-only volume (catalog flag).
assert os.stat(mnt + "/5").st_mode & 0o777 == 0o400
expect_err(errno.EROFS, os.open, mnt + "/5", os.O_RDWR)

# statfs counts the pool's data blocks, as the status line does.
st = os.statvfs(mnt)
status = open(mnt + "/.status").read().split()
used, total = map(int, status[2].split("/"))
assert st.f_bsize == B and st.f_blocks == total == 1024, (st, status)
assert st.f_bfree == total - used
assert status[3] == "-" and status[4] == "rw"

# The control file: errors are the messages' errnos, read back as text.
expect_err(errno.EEXIST, control, "create_thin 0 1m")
assert open(mnt + "/.control").read().startswith("error: 'create_thin 0 1m'")
expect_err(errno.EINVAL, control, "create_thin")
expect_err(errno.EINVAL, control, "no_such_message 1")
expect_err(errno.EINVAL, control, "create_thin 16777216 1m")
expect_err(errno.EINVAL, control, "create_thin 3 1000")  # not a multiple of 512
expect_err(errno.ENODATA, control, "create_snap 9 4")
expect_err(errno.EBUSY, control, "delete 0")
control("create_snap 9 0\ncreate_thin 3 2m\n")
assert open(mnt + "/.control").read() == "ok\n"
assert os.stat(mnt + "/9").st_size == 4 << 20 and os.stat(mnt + "/3").st_size == 2 << 20
origin = os.pread(fd, 4 << 20, 0)
with open(mnt + "/9", "rb") as f:
    assert f.read() == origin, "the snapshot differs from its origin"
os.pwrite(fd, b"e" * B, 0)
with open(mnt + "/9", "rb") as f:
    assert f.read() == origin, "a write to the origin shows in the snapshot"
control("delete 9")
expect_err(errno.ENOENT, os.stat, mnt + "/9")
control("set_transaction_id 0 5")
assert open(mnt + "/.status").read().split()[0] == "5"
control("reserve_metadata_snap")
assert open(mnt + "/.status").read().split()[3] != "-"
control("release_metadata_snap")
os.close(fd)
EOF
fuse_umount
pool_checks

step "writes survive unmount; the table kept up"
"$THINP" ls -m "$T/meta" >"$T/ls"
awk '$1 == 3 && $6 == 2097152 { a = 1 } $1 == 9 { b = 1 } END { exit !(a && !b) }' "$T/ls" ||
	{ cat "$T/ls"; fail "the catalog after the messages"; }
fuse_mount
[ "$(head -c 3 "$MNT/0")" = eee ] || fail "data written before unmount is gone"
[ "$(ls "$MNT" | tr '\n' ' ')" = "0 3 5 8 " ] || fail "files after remount: $(ls "$MNT")"
fuse_umount
pool_checks
echo "PASS"
