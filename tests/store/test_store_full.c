/* SPDX-License-Identifier: MIT */
/*
 * A full disk must never leave a store stuck. On a 24 MiB ext4 image
 * (loop-mounted in a private mount namespace) puts fill the filesystem
 * until -ENOSPC; then 2000 cycles of remove + put of the same size must
 * all succeed (the index keeps taking records, and compacts within its
 * own reserve), every key reads back byte for byte, and after a reopen a
 * remove and a put still work. Then ramfs, which has no fallocate: a
 * store with a fixed capacity opens there and works. Needs root, a loop
 * device and mkfs.ext4; skips otherwise.
 */
#include <sched.h>
#include <sys/mount.h>

#include "test_store_common.h"

#define KiB	1024u
/*
 * The value size, odd on purpose. What the filesystem has left after the
 * fill depends on it: with 100 KiB + 3 too little was left for the log's
 * least reserve step, and the log compacted on every append until it ran
 * out (cycle 321), so both sizes run.
 */
static size_t VAL = 192u * KiB + 3;
#define CYCLES	2000u

static char *mnt;

static void unmount_at_exit(void)
{
	if (mnt)
		umount2(mnt, MNT_DETACH);
}

/* Mount @what (a type, and an image or NULL) at @dir/mnt. */
static void mount_fs(const char *dir, const char *type, const char *image)
{
	char *cmd;

	mnt = t_path(dir, type);
	if (mkdir(mnt, 0755) && errno != EEXIST)
		t_die("mkdir %s: %s", mnt, strerror(errno));
	if (!image) {
		if (mount("none", mnt, type, 0, NULL))
			t_skip("mount -t %s: %s", type, strerror(errno));
	} else {
		if (asprintf(&cmd, "mount -o loop -t %s '%s' '%s'", type,
			     image, mnt) < 0)
			t_die("asprintf");
		if (system(cmd) != 0)
			t_skip("%s failed (no loop device?)", cmd);
		free(cmd);
	}
	atexit(unmount_at_exit);
}

static void make_image(const char *image)
{
	char *cmd;

	if (asprintf(&cmd, "truncate -s 24M '%s' && mkfs.ext4 -q -F -m 0 "
		     "'%s' >/dev/null 2>&1", image, image) < 0)
		t_die("asprintf");
	if (system(cmd) != 0)
		t_skip("mkfs.ext4 not available");
	free(cmd);
}

static unsigned int fill(swapio_store *s)
{
	unsigned int n = 0;
	int ret;

	while (!(ret = ts_put(s, n, 1, VAL)))
		n++;
	if (ret != -ENOSPC)
		t_die("put %u: %s, expected ENOSPC", n, swapio_strerror(ret));
	if (n < 8)
		t_die("only %u values fit", n);
	return n;
}

/* Remove key c % n and put it again, same size, next generation. */
static void cycles(swapio_store *s, unsigned int n, uint64_t *gen)
{
	char key[64];
	int ret;

	for (unsigned int c = 0; c < CYCLES; c++) {
		unsigned int id = c % n;

		ts_key(key, sizeof(key), id);
		ret = swapio_store_remove(s, key);
		if (ret)
			t_die("cycle %u: remove: %s", c, swapio_strerror(ret));
		ret = ts_put(s, id, gen[id] + 1, VAL);
		if (ret)
			t_die("cycle %u: put: %s", c, swapio_strerror(ret));
		gen[id]++;
	}
}

static void check_all(swapio_store *s, unsigned int n, const uint64_t *gen)
{
	for (unsigned int i = 0; i < n; i++) {
		int ret = ts_get_check(s, i, gen[i], VAL);

		if (ret)
			t_die("key %u: %s", i,
			      ret > 0 ? "wrong data" : swapio_strerror(ret));
	}
}

static void full_ext4(const char *dir, swapio_handle *h)
{
	char *image = t_path(dir, "ext4.img"), *sdir;
	uint64_t gen[256];
	unsigned int n;
	swapio_store *s;
	char key[64];

	make_image(image);
	mount_fs(dir, "ext4", image);
	sdir = t_path(mnt, "store");
	s = ts_open(h, sdir, &(struct swapio_store_config){
			.grow_bytes = 1u << 20 });
	n = fill(s);
	if (n > 256)
		t_die("too many values: %u", n);
	for (unsigned int i = 0; i < n; i++)
		gen[i] = 1;
	cycles(s, n, gen);
	check_all(s, n, gen);
	swapio_store_close(s);

	s = ts_open(h, sdir, NULL);
	check_all(s, n, gen);
	ts_key(key, sizeof(key), 0);
	if (swapio_store_remove(s, key))
		t_die("remove after reopen on a full filesystem");
	if (ts_put(s, 0, gen[0] + 1, VAL))
		t_die("put after remove after reopen");
	gen[0]++;
	cycles(s, n, gen);
	swapio_store_close(s);
	s = ts_open(h, sdir, NULL);
	check_all(s, n, gen);
	swapio_store_close(s);
	printf("ext4: %u values, %u remove+put cycles twice, all intact\n",
	       n, CYCLES);
	umount2(mnt, MNT_DETACH);
	free(mnt);
	mnt = NULL;
	free(sdir);
	free(image);
}

/* ramfs has no fallocate: a fixed capacity still opens. */
static void capacity_on_ramfs(const char *dir, swapio_handle *h)
{
	struct swapio_store_config cfg = { .capacity = 4u << 20 };
	swapio_store *s;
	char *sdir;
	int ret;

	mount_fs(dir, "ramfs", NULL);
	sdir = t_path(mnt, "store");
	ret = ts_store_open(h, sdir, &cfg, &s);
	if (ret)
		t_die("capacity on ramfs: %s", swapio_strerror(ret));
	if (ts_put(s, 1, 1, VAL) || ts_get_check(s, 1, 1, VAL))
		t_die("put/get on ramfs");
	swapio_store_close(s);
	s = ts_open(h, sdir, &cfg);
	if (ts_get_check(s, 1, 1, VAL))
		t_die("reopen on ramfs");
	swapio_store_close(s);
	printf("ramfs: a fixed capacity without fallocate\n");
	free(sdir);
}

int main(void)
{
	swapio_handle *h;
	char *dir;

	t_engine();
	if (geteuid() != 0)
		t_skip("mounting a filesystem needs root");
	dir = t_tmpdir();
	/* A private namespace: the mounts cannot outlive this process. */
	if (unshare(CLONE_NEWNS))
		t_skip("unshare(CLONE_NEWNS): %s", strerror(errno));
	(void)mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	h = t_handle((struct swapio_config){ 0 });
	full_ext4(dir, h);
	VAL = 100u * KiB + 3;
	full_ext4(dir, h);
	capacity_on_ramfs(dir, h);
	swapio_handle_destroy(h);
	unmount_at_exit();
	free(mnt);
	mnt = NULL;
	t_rmdir(dir);
	return 0;
}
