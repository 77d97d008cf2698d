/*
 * Preloaded into glibc programs of an agent that runs under gVisor (see
 * host/src/launch/provision.rs): glibc's `statx`, retried without AT_NO_AUTOMOUNT when the
 * kernel refuses that flag.
 *
 * Why: gVisor's 2022-12 release (Debian 12's runsc) answers statx(2) with EINVAL whenever
 * AT_NO_AUTOMOUNT is set, and coreutils 9 sets it on every call, so `ls`, `stat`, `du`, `cp -a`
 * fail in the agent ("cannot access '/tmp': Invalid argument"). The flag only matters on automount
 * points, which a container has none of. Under a kernel that accepts the flag nothing changes.
 *
 * Built with -nostdlib: no libc of the build machine is linked in, so the library loads into any
 * glibc; errno is set through glibc's own __errno_location, resolved when it is loaded.
 */
struct statx;

extern int *__errno_location(void);

#define SYS_STATX 332L
#define EINVAL_ 22L
#define AT_NO_AUTOMOUNT_ 0x800

static long raw_statx(long dirfd, const char *path, long flags, long mask, struct statx *buf)
{
    long ret;
    register long r10 __asm__("r10") = mask;
    register long r8 __asm__("r8") = (long)buf;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(SYS_STATX), "D"(dirfd), "S"(path), "d"(flags), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
{
    long ret = raw_statx(dirfd, path, flags, mask, buf);
    if (ret == -EINVAL_ && (flags & AT_NO_AUTOMOUNT_))
        ret = raw_statx(dirfd, path, flags & ~AT_NO_AUTOMOUNT_, mask, buf);
    if (ret < 0) {
        *__errno_location() = (int)-ret;
        return -1;
    }
    return 0;
}
