/* SPDX-License-Identifier: MIT */
/*
 * ENOSPC on a real, small filesystem: a 16 MiB tmpfs mounted in a private
 * mount namespace (so it vanishes with this process). Puts fill it until
 * one fails with -ENOSPC; then every earlier key still reads back intact,
 * the failed put left no space behind (data file and filesystem usage as
 * before), a remove makes room for a new put, and a reopen agrees. A
 * store whose fixed capacity cannot be allocated is refused with -ENOSPC
 * and leaves nothing behind either. Needs root; skips otherwise.
 */
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "test_store_common.h"

#define MiB	(1024u * 1024u)

static char *mnt;

static void unmount_at_exit(void)
{
	if (mnt)
		umount2(mnt, MNT_DETACH);
}

static void mount_small_tmpfs(const char *dir)
{
	mnt = t_path(dir, "mnt");
	if (mkdir(mnt, 0755))
		t_die("mkdir %s: %s", mnt, strerror(errno));
	if (geteuid() != 0)
		t_skip("mounting a tmpfs needs root");
	/* A private namespace: the mount cannot outlive this process. */
	if (!unshare(CLONE_NEWNS))
		(void)mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=16m"))
		t_skip("mount -t tmpfs -o size=16m: %s", strerror(errno));
	atexit(unmount_at_exit);
}

static uint64_t fs_free(const char *path)
{
	struct statvfs st;

	if (statvfs(path, &st))
		t_die("statvfs %s: %s", path, strerror(errno));
	return (uint64_t)st.f_bfree * st.f_frsize;
}

static size_t len_of(unsigned int i)
{
	return MiB + i * 1000u + 1;	/* odd sizes */
}

/* Puts until -ENOSPC; returns how many succeeded. */
static unsigned int fill(swapio_store *s)
{
	struct swapio_store_info a, b;
	uint64_t free_before;
	unsigned int n = 0;
	int ret;

	for (;;) {
		swapio_store_info(s, &a);
		free_before = fs_free(mnt);
		ret = ts_put(s, n, 1, len_of(n));
		if (ret)
			break;
		n++;
	}
	if (ret != -ENOSPC)
		t_die("put %u: %s, expected ENOSPC", n, swapio_strerror(ret));
	swapio_store_info(s, &b);
	if (b.file_bytes != a.file_bytes || b.keys != a.keys ||
	    b.used_bytes != a.used_bytes)
		t_die("the failed put changed the store");
	if (fs_free(mnt) != free_before)
		t_die("the failed put kept %lld bytes of the filesystem",
		      (long long)(free_before - fs_free(mnt)));
	printf("filled: %u values, data file %llu B, %llu B free in the fs\n",
	       n, (unsigned long long)b.file_bytes,
	       (unsigned long long)fs_free(mnt));
	return n;
}

static void check_all(swapio_store *s, unsigned int n, unsigned int skip)
{
	for (unsigned int i = 0; i < n; i++) {
		int ret = ts_get_check(s, i, 1, len_of(i));

		if (i == skip)
			ret = ret == -ENOENT ? 0 : -EEXIST;
		if (ret)
			t_die("key %u after ENOSPC: %s", i,
			      ret > 0 ? "wrong data" : swapio_strerror(ret));
	}
}

/* A capacity the filesystem cannot hold: refused, nothing kept. */
static void capacity_too_big(swapio_handle *h)
{
	struct swapio_store_config cfg = { .capacity = 64ull * MiB };
	char *dir = t_path(mnt, "big");
	uint64_t before = fs_free(mnt);
	swapio_store *s;
	int ret;

	ret = ts_store_open(h, dir, &cfg, &s);
	if (ret != -ENOSPC)
		t_die("capacity 64 MiB on 16 MiB: %s", swapio_strerror(ret));
	if (fs_free(mnt) + 64 * 1024 < before)
		t_die("a refused capacity kept %llu bytes",
		      (unsigned long long)(before - fs_free(mnt)));
	free(dir);
}

int main(void)
{
	char *dir, *sdir, key[64];
	unsigned int n;
	swapio_handle *h;
	swapio_store *s;
	int ret;

	t_engine();
	dir = t_tmpdir();
	mount_small_tmpfs(dir);
	sdir = t_path(mnt, "store");
	h = t_handle((struct swapio_config){ 0 });
	s = ts_open(h, sdir, NULL);

	n = fill(s);
	if (n < 8)
		t_die("only %u MiB values fit in 16 MiB", n);
	check_all(s, n, UINT32_MAX);
	/* Still full, still refused, still nothing leaked. */
	if (ts_put(s, n, 1, len_of(n)) != -ENOSPC)
		t_die("a second try at the failed put did not fail");

	/* A remove makes room; a put of the same size now fits. */
	ts_key(key, sizeof(key), 0);
	ret = swapio_store_remove(s, key);
	if (ret)
		t_die("remove on a full filesystem: %s", swapio_strerror(ret));
	ret = ts_put(s, n, 1, len_of(0));
	if (ret)
		t_die("put after remove: %s", swapio_strerror(ret));
	capacity_too_big(h);
	swapio_store_close(s);

	s = ts_open(h, sdir, NULL);
	check_all(s, n, 0);
	if (ts_get_check(s, n, 1, len_of(0)))
		t_die("the put after the remove did not survive a reopen");
	swapio_store_close(s);
	swapio_handle_destroy(h);

	unmount_at_exit();
	free(mnt);
	mnt = NULL;
	free(sdir);
	t_rmdir(dir);
	printf("ok: ENOSPC left every key readable and no space behind\n");
	return 0;
}
