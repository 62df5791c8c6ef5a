/* SPDX-License-Identifier: MIT */
/*
 * Safe on a shared machine (docs/RELIABILITY.md, "Shared machines"): what
 * another local user plants in a store directory, or where a swap file or
 * a configuration is created, is refused and never written through; what
 * the library creates is private unless asked otherwise.
 *
 * Run as root (ctest's secure.<engine>) and, with SWAPIO_TEST_AS_NOBODY=1
 * (secure.nobody), as the unprivileged user nobody: root drops to it
 * before the first test. Checks that need root (a directory of another
 * user, a device node, a hard link to a file of root's) print why and
 * skip when not root.
 */
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_store_common.h"
#include "util.h"

#define NOBODY		65534
#define OTHER_UID	65533	/* neither root nor nobody */
#define HANG_SECS	10	/* a hang fails the test after this long */

struct env {
	char		*dir;		/* the test's own, 0700 */
	char		*outside;	/* where victims live, 0700 */
	char		*store;		/* dir/st, not created */
	swapio_handle	*h;
};

/* A file outside the store whose bytes and mtime must never change. */
struct victim {
	char		*path;
	unsigned char	*data;
	size_t		size;
	struct stat	st;
};

static struct victim *victim_new(const struct env *env, const char *name,
				 uint64_t seed)
{
	struct victim *v = t_zalloc(sizeof(*v));

	v->path = t_path(env->outside, name);
	v->size = 8192 + 17;
	v->data = t_random_buf(v->size, seed);
	t_write_file(v->path, v->data, v->size);
	assert_int_equal(stat(v->path, &v->st), 0);
	return v;
}

/* The victim is exactly as it was made; then freed. */
static void victim_check_free(struct victim *v)
{
	struct stat st;
	unsigned char *now;
	size_t n;

	assert_int_equal(lstat(v->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_ino, v->st.st_ino);
	assert_int_equal(st.st_mtim.tv_sec, v->st.st_mtim.tv_sec);
	assert_int_equal(st.st_mtim.tv_nsec, v->st.st_mtim.tv_nsec);
	now = t_read_file(v->path, &n);
	assert_int_equal(n, v->size);
	assert_memory_equal(now, v->data, n);
	free(now);
	free(v->data);
	free(v->path);
	free(v);
}

static int each_setup(void **state)
{
	struct env *env = t_zalloc(sizeof(*env));
	struct swapio_config cfg = { 0 };

	env->dir = t_tmpdir();
	env->outside = t_path(env->dir, "outside");
	if (mkdir(env->outside, 0700))
		t_die("mkdir %s: %s", env->outside, strerror(errno));
	env->store = t_path(env->dir, "st");
	env->h = t_handle(cfg);
	*state = env;
	alarm(HANG_SECS);	/* SIGALRM ends the program: a hang fails */
	return 0;
}

static int each_teardown(void **state)
{
	struct env *env = *state;

	alarm(0);
	swapio_handle_destroy(env->h);
	free(env->outside);
	free(env->store);
	t_rmdir(env->dir);
	free(env);
	return 0;
}

/* swapio_store_open() of @dir, with @flags; the store is closed again. */
static int store_try(const struct env *env, const char *dir, uint32_t flags)
{
	struct swapio_store_config cfg = { .flags = flags };
	swapio_store *s = NULL;
	int ret;

	ret = swapio_store_open(env->h, dir, &cfg, &s);
	if (!ret) {
		assert_int_equal(ts_put(s, 1, 7, 12345), 0);
		assert_int_equal(ts_get_check(s, 1, 7, 12345), 0);
		swapio_store_close(s);
	} else {
		assert_null(s);
	}
	return ret;
}

/* The detail names @what (a path or a reason). */
static void detail_has(const char *what)
{
	if (!strstr(swapio_error_detail(), what))
		fail_msg("detail \"%s\" lacks \"%s\"", swapio_error_detail(),
			 what);
}

static void store_dir_make(const struct env *env)
{
	assert_int_equal(mkdir(env->store, 0700), 0);
}

static void plant_link(const struct env *env, const char *name,
		       const char *target)
{
	char *p = t_path(env->store, name);

	assert_int_equal(symlink(target, p), 0);
	free(p);
}

static bool exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

static bool need_root(const char *what)
{
	if (!geteuid())
		return true;
	printf("SKIP %s: needs root\n", what);
	return false;
}

/* ------------------------------------------------------------------ */
/* Links planted in a store directory                                  */
/* ------------------------------------------------------------------ */

/*
 * index.tmp -> a file outside: a new store's first compaction writes
 * index.tmp. The planted link is removed, not followed: the store opens,
 * and the file it pointed to keeps every byte and its mtime.
 */
static void planted_index_tmp_on_create(void **state)
{
	struct env *env = *state;
	struct victim *v = victim_new(env, "secret", 1);
	char *tmp = t_path(env->store, "index.tmp");

	store_dir_make(env);
	plant_link(env, "index.tmp", v->path);
	assert_int_equal(store_try(env, env->store, 0), 0);
	assert_false(exists(tmp));
	victim_check_free(v);
	free(tmp);
}

/* The same when an existing store compacts its long log at open. */
static void planted_index_tmp_on_compaction(void **state)
{
	struct env *env = *state;
	struct victim *v = victim_new(env, "secret", 2);
	swapio_store *s;

	assert_int_equal(swapio_store_open(env->h, env->store, NULL, &s), 0);
	for (unsigned int i = 0; i < 200; i++)
		assert_int_equal(ts_put(s, 1, i, 512), 0);
	swapio_store_close(s);
	plant_link(env, "index.tmp", v->path);
	assert_int_equal(swapio_store_open(env->h, env->store, NULL, &s), 0);
	assert_int_equal(ts_get_check(s, 1, 199, 512), 0);
	swapio_store_close(s);
	victim_check_free(v);
}

/* A dangling link as data, index or lock: refused, nothing created where
 * it points. */
static void planted_dangling_links(void **state)
{
	static const char *const names[] = { "data", "lock", "index" };
	struct env *env = *state;

	for (size_t i = 0; i < T_ARRAY_SIZE(names); i++) {
		char *target = t_path(env->outside, names[i]);
		char *link = t_path(env->store, names[i]);

		store_dir_make(env);
		plant_link(env, names[i], target);
		assert_int_equal(store_try(env, env->store, 0), -ELOOP);
		detail_has(link);
		detail_has("symbolic link");
		assert_false(exists(target));
		assert_int_equal(store_try(env, env->store,
					   SWAPIO_STORE_RECOVER), -ELOOP);
		assert_false(exists(target));
		t_rmdir(strdup(env->store));
		free(target);
		free(link);
	}
}

/* lock and index linked to a file outside: refused, the file untouched. */
static void planted_links_to_victim(void **state)
{
	static const char *const names[] = { "lock", "index", "data" };
	struct env *env = *state;

	for (size_t i = 0; i < T_ARRAY_SIZE(names); i++) {
		struct victim *v = victim_new(env, "secret", 10 + i);

		store_dir_make(env);
		plant_link(env, names[i], v->path);
		assert_int_equal(store_try(env, env->store, 0), -ELOOP);
		assert_int_equal(store_try(env, env->store,
					   SWAPIO_STORE_RECOVER), -ELOOP);
		victim_check_free(v);
		t_rmdir(strdup(env->store));
	}
}

/* data linked to another store's data: refused; that store keeps its
 * bytes and still reads back its value. */
static void planted_link_to_other_store(void **state)
{
	struct env *env = *state;
	char *other = t_path(env->outside, "other");
	char *odata = t_path(other, "data");
	struct victim v = { 0 };
	swapio_store *s;
	unsigned char *now;
	size_t n;

	assert_int_equal(swapio_store_open(env->h, other, NULL, &s), 0);
	assert_int_equal(ts_put(s, 3, 1, 70000), 0);
	assert_int_equal(swapio_store_sync(s), 0);
	swapio_store_close(s);
	v.data = t_read_file(odata, &v.size);
	assert_int_equal(stat(odata, &v.st), 0);

	store_dir_make(env);
	plant_link(env, "data", odata);
	assert_int_equal(store_try(env, env->store, 0), -ELOOP);

	now = t_read_file(odata, &n);
	assert_int_equal(n, v.size);
	assert_memory_equal(now, v.data, n);
	free(now);
	assert_int_equal(swapio_store_open(env->h, other, NULL, &s), 0);
	assert_int_equal(ts_get_check(s, 3, 1, 70000), 0);
	swapio_store_close(s);
	free(v.data);
	free(odata);
	free(other);
}

/* The store directory itself a link: refused (-ELOOP). */
static void store_dir_link(void **state)
{
	struct env *env = *state;
	char *real = t_path(env->outside, "real");
	char *slash = t_path(env->store, "");

	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink(real, env->store), 0);
	assert_int_equal(store_try(env, env->store, 0), -ELOOP);
	detail_has(env->store);
	assert_int_equal(store_try(env, env->store, SWAPIO_STORE_NO_CREATE),
			 -ELOOP);
	/* A trailing slash does not make the link followed. */
	assert_int_equal(store_try(env, slash, 0), -ELOOP);
	/* Nothing was created in the directory it points to. */
	assert_int_equal(rmdir(real), 0);
	free(slash);
	free(real);
}

/* A hard link to a file of root's as data: refused (-EPERM). */
static void planted_hard_link(void **state)
{
	struct env *env = *state;
	struct victim *v = victim_new(env, "secret", 20);
	char *p = t_path(env->store, "data");

	store_dir_make(env);
	assert_int_equal(link(v->path, p), 0);
	assert_int_equal(store_try(env, env->store, 0), -EPERM);
	detail_has("hard links");
	victim_check_free(v);
	free(p);
}

/* ------------------------------------------------------------------ */
/* Files that are not regular                                          */
/* ------------------------------------------------------------------ */

/*
 * A FIFO as data, index, lock or drives: refused at once (-ESPIPE), by a
 * plain open and by RECOVER. An open that blocked would hang here until
 * SIGALRM ends the program.
 */
static void fifos_refused_at_once(void **state)
{
	static const char *const names[] = { "data", "index", "lock" };
	struct env *env = *state;
	char *drives = t_path(env->store, "drives");
	uint64_t t0;

	for (size_t i = 0; i < T_ARRAY_SIZE(names); i++) {
		char *p = t_path(env->store, names[i]);
		t0 = swapio__now_ns();

		store_dir_make(env);
		assert_int_equal(mkfifo(p, 0600), 0);
		assert_int_equal(store_try(env, env->store, 0), -ESPIPE);
		detail_has(p);
		detail_has("FIFO");
		assert_int_equal(store_try(env, env->store,
					   SWAPIO_STORE_RECOVER), -ESPIPE);
		assert_true(swapio__now_ns() - t0 < 2000000000ull);
		t_rmdir(strdup(env->store));
		free(p);
	}
	/* An existing store reads its drive record, if any. */
	assert_int_equal(store_try(env, env->store, 0), 0);
	assert_int_equal(mkfifo(drives, 0600), 0);
	t0 = swapio__now_ns();
	assert_int_equal(store_try(env, env->store, 0), -ESPIPE);
	detail_has(drives);
	assert_true(swapio__now_ns() - t0 < 2000000000ull);
	free(drives);
}

/* A directory or a device node as data: refused too. */
static void other_types_refused(void **state)
{
	struct env *env = *state;
	char *p = t_path(env->store, "data");

	store_dir_make(env);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(store_try(env, env->store, 0), -EISDIR);
	assert_int_equal(rmdir(p), 0);
	if (need_root("device node as data")) {
		assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(1, 3)), 0);
		assert_int_equal(store_try(env, env->store, 0), -ESPIPE);
		detail_has("character device");
	}
	free(p);
}

/* ------------------------------------------------------------------ */
/* The store directory's owner and mode                                */
/* ------------------------------------------------------------------ */

/* Writable by group or others, not sticky: refused (-EPERM). */
static void dir_writable_by_others(void **state)
{
	static const mode_t modes[] = { 0777, 0770, 0730, 0703 };
	struct env *env = *state;

	store_dir_make(env);
	for (size_t i = 0; i < T_ARRAY_SIZE(modes); i++) {
		assert_int_equal(chmod(env->store, modes[i]), 0);
		assert_int_equal(store_try(env, env->store, 0), -EPERM);
		detail_has("writable by others");
		assert_int_equal(store_try(env, env->store,
					   SWAPIO_STORE_RECOVER), -EPERM);
	}
	/* Nothing was made in it. */
	assert_int_equal(chmod(env->store, 0700), 0);
	assert_int_equal(rmdir(env->store), 0);
	/* Sticky and ours, as /tmp is root's: accepted. */
	store_dir_make(env);
	assert_int_equal(chmod(env->store, 01777), 0);
	assert_int_equal(store_try(env, env->store, 0), 0);
}

/*
 * Owned by another user (a directory someone made ahead of us under a
 * sticky /tmp-like parent): refused, nothing created in it. A store
 * directory of root's under such a parent is fine.
 */
static void dir_of_another_user(void **state)
{
	struct env *env = *state;
	char *parent = t_path(env->dir, "tmp");
	char *theirs = t_path(parent, "st");
	char *ours = t_path(parent, "mine");
	char *lock = t_path(theirs, "lock");

	if (!need_root("directory of another user"))
		goto out;
	assert_int_equal(mkdir(parent, 0700), 0);
	assert_int_equal(chmod(parent, 01777), 0);
	assert_int_equal(mkdir(theirs, 0755), 0);
	assert_int_equal(chown(theirs, OTHER_UID, OTHER_UID), 0);
	assert_int_equal(store_try(env, theirs, 0), -EPERM);
	detail_has("owned by uid 65533");
	assert_false(exists(lock));
	assert_int_equal(store_try(env, ours, 0), 0);
	assert_int_equal(store_try(env, ours, SWAPIO_STORE_NO_CREATE), 0);
	/* A file of another user in a store directory: refused too. */
	free(lock);
	lock = t_path(ours, "lock");
	assert_int_equal(chown(lock, OTHER_UID, OTHER_UID), 0);
	assert_int_equal(store_try(env, ours, 0), -EPERM);
	detail_has(lock);
out:
	free(lock);
	free(ours);
	free(theirs);
	free(parent);
}

/* ------------------------------------------------------------------ */
/* Modes                                                               */
/* ------------------------------------------------------------------ */

static mode_t mode_of(const char *dir, const char *name)
{
	char *p = name ? t_path(dir, name) : strdup(dir);
	struct stat st;

	assert_int_equal(lstat(p, &st), 0);
	free(p);
	return st.st_mode & 07777;
}

/*
 * New store directories 0700 and files 0600 even with umask 0, as are
 * swap files; SWAPIO_STORE_SHARED and SWAPIO_O_SHARED give 0755 and
 * 0644, less the umask.
 */
static void private_modes(void **state)
{
	struct env *env = *state;
	const mode_t old = umask(0);
	char *d1 = t_path(env->dir, "d1"), *swap = t_path(env->dir, "swap");
	struct swapio_store_drive dv[2] = {
		{ .h = env->h, .dir = env->store },
		{ .h = env->h, .dir = d1 },
	};
	struct swapio_store_config cfg = { .stripe_unit = 1u << 20 };
	unsigned char buf[100] = { 1 };
	swapio_store *s;
	swapio_file *f;

	assert_int_equal(swapio_store_open_multi(dv, 2, &cfg, &s, NULL), 0);
	assert_int_equal(ts_put(s, 1, 1, 3u << 20), 0);
	swapio_store_close(s);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(mode_of(dv[i].dir, NULL), 0700);
		assert_int_equal(mode_of(dv[i].dir, "data"), 0600);
		assert_int_equal(mode_of(dv[i].dir, "lock"), 0600);
		assert_int_equal(mode_of(dv[i].dir, "drives"), 0600);
	}
	assert_int_equal(mode_of(env->store, "index"), 0600);

	assert_int_equal(swapio_file_open(env->h, swap, SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE, &f), 0);
	assert_int_equal(swapio_file_close(f), 0);
	assert_int_equal(mode_of(swap, NULL), 0600);
	assert_int_equal(unlink(swap), 0);
	assert_int_equal(swapio_pwrite_path(env->h, swap, buf, sizeof(buf), 0),
			 (ssize_t)sizeof(buf));
	assert_int_equal(mode_of(swap, NULL), 0600);
	assert_int_equal(unlink(swap), 0);

	/* Shared: 0755 and 0644, the umask applied. */
	t_rmdir(strdup(env->store));
	t_rmdir(strdup(d1));
	cfg.flags = SWAPIO_STORE_SHARED;
	assert_int_equal(swapio_store_open_multi(dv, 2, &cfg, &s, NULL), 0);
	swapio_store_close(s);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(mode_of(dv[i].dir, NULL), 0755);
		assert_int_equal(mode_of(dv[i].dir, "data"), 0644);
		assert_int_equal(mode_of(dv[i].dir, "lock"), 0644);
	}
	assert_int_equal(mode_of(env->store, "index"), 0644);
	t_rmdir(strdup(env->store));
	umask(027);
	cfg.flags = SWAPIO_STORE_SHARED;
	assert_int_equal(swapio_store_open(env->h, env->store, &cfg, &s), 0);
	swapio_store_close(s);
	assert_int_equal(mode_of(env->store, NULL), 0750);
	assert_int_equal(mode_of(env->store, "data"), 0640);
	assert_int_equal(swapio_file_open(env->h, swap, SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE | SWAPIO_O_SHARED,
					  &f), 0);
	assert_int_equal(swapio_file_close(f), 0);
	assert_int_equal(mode_of(swap, NULL), 0640);
	umask(0);
	assert_int_equal(unlink(swap), 0);
	assert_int_equal(swapio_file_open(env->h, swap, SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE | SWAPIO_O_SHARED,
					  &f), 0);
	assert_int_equal(swapio_file_close(f), 0);
	assert_int_equal(mode_of(swap, NULL), 0644);
	umask(old);
	free(swap);
	free(d1);
}

/* ------------------------------------------------------------------ */
/* Striped stores                                                      */
/* ------------------------------------------------------------------ */

/* The same directory twice, also by two paths: -EINVAL, both named. */
static void same_dir_twice(void **state)
{
	struct env *env = *state;
	char *alias = t_path(env->dir, "alias");
	char *via = t_path(alias, "st");
	struct swapio_store_drive dv[2] = {
		{ .h = env->h, .dir = env->store },
		{ .h = env->h, .dir = env->store },
	};
	unsigned int failed = 99;
	swapio_store *s = NULL;

	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, &failed),
			 -EINVAL);
	assert_int_equal(failed, 1);
	assert_null(s);
	detail_has("the same directory");
	/* A link among the parents is followed: the same directory still. */
	assert_int_equal(symlink(env->dir, alias), 0);
	dv[1].dir = via;
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, &failed),
			 -EINVAL);
	assert_int_equal(failed, 1);
	detail_has(via);
	/* And the store was not left half-made: a plain open makes it. */
	assert_int_equal(store_try(env, env->store, 0), 0);
	free(via);
	free(alias);
}

/*
 * A link planted as the second drive's data: a new store refuses a drive
 * that holds data (SWAPIO_EDRIVES), an existing one the link (-ELOOP).
 */
static void striped_planted_link(void **state)
{
	struct env *env = *state;
	struct victim *v = victim_new(env, "secret", 30);
	char *d1 = t_path(env->dir, "d1"), *p = t_path(d1, "data");
	struct swapio_store_drive dv[2] = {
		{ .h = env->h, .dir = env->store },
		{ .h = env->h, .dir = d1 },
	};
	unsigned int failed = 99;
	swapio_store *s = NULL;

	assert_int_equal(mkdir(d1, 0700), 0);
	assert_int_equal(symlink(v->path, p), 0);
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, &failed),
			 SWAPIO_EDRIVES);
	assert_int_equal(failed, 1);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, &failed), 0);
	assert_int_equal(ts_put(s, 2, 1, 3u << 20), 0);
	swapio_store_close(s);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink(v->path, p), 0);
	assert_int_equal(swapio_store_open_multi(dv, 2, NULL, &s, &failed),
			 -ELOOP);
	assert_int_equal(failed, 1);
	detail_has(p);
	victim_check_free(v);
	free(p);
	free(d1);
}

/* ------------------------------------------------------------------ */
/* Swap files created by path                                          */
/* ------------------------------------------------------------------ */

/*
 * Created through a link someone else could have planted: never (-ELOOP),
 * the target neither written nor created. Here the link lies in a
 * directory others may write (shared/, 0777, not sticky).
 */
static void swap_file_create_through_link(void **state)
{
	struct env *env = *state;
	struct victim *v = victim_new(env, "secret", 40);
	char *shared = t_path(env->dir, "shared");
	char *link = t_path(shared, "swap");
	char *dangling = t_path(shared, "swap2");
	char *target = t_path(env->outside, "new");
	unsigned char buf[4096];
	swapio_file *f = NULL;

	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(mkdir(shared, 0700), 0);
	assert_int_equal(chmod(shared, 0777), 0);
	assert_int_equal(symlink(v->path, link), 0);
	assert_int_equal(symlink(target, dangling), 0);
	assert_int_equal(swapio_file_open(env->h, link, SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE, &f), -ELOOP);
	assert_null(f);
	detail_has(link);
	detail_has("symbolic link");
	assert_int_equal(swapio_file_open(env->h, link, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE |
					  SWAPIO_O_TRUNC, &f), -ELOOP);
	assert_int_equal(swapio_pwrite_path(env->h, link, buf, sizeof(buf),
					    0), -ELOOP);
	assert_int_equal(swapio_file_open(env->h, dangling, SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE, &f), -ELOOP);
	assert_int_equal(swapio_pwrite_path(env->h, dangling, buf,
					    sizeof(buf), 0), -ELOOP);
	assert_false(exists(target));
	victim_check_free(v);

	/* Without SWAPIO_O_CREATE the link is the caller's to follow. */
	v = victim_new(env, "mine", 41);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink(v->path, link), 0);
	assert_int_equal(swapio_file_open(env->h, link, SWAPIO_O_READ, &f), 0);
	assert_int_equal(swapio_pread(env->h, f, buf, 100, 0), 100);
	assert_memory_equal(buf, v->data, 100);
	assert_int_equal(swapio_file_close(f), 0);
	victim_check_free(v);
	free(target);
	free(dangling);
	free(link);
	free(shared);
}

/*
 * A link of another user in a sticky directory (as /tmp): -ELOOP too.
 * The caller's own link in a directory of its own, and /proc/self/fd/N,
 * are followed: only the caller or root could have put them there.
 */
static void swap_file_create_trusted_link(void **state)
{
	struct env *env = *state;
	char *sticky = t_path(env->dir, "sticky");
	char *theirs = t_path(sticky, "swap");
	char *mine = t_path(env->dir, "swap");
	char *target = t_path(env->outside, "new");
	char proc[64];
	unsigned char *data = t_random_buf(3 * 4096 + 5, 60), *back;
	swapio_file *f = NULL;
	size_t n;
	int fd;

	if (need_root("link of another user")) {
		struct victim *v = victim_new(env, "secret", 61);

		assert_int_equal(mkdir(sticky, 0700), 0);
		assert_int_equal(chmod(sticky, 01777), 0);
		assert_int_equal(symlink(v->path, theirs), 0);
		assert_int_equal(lchown(theirs, OTHER_UID, OTHER_UID), 0);
		assert_int_equal(swapio_pwrite_path(env->h, theirs, data, 100,
						    0), -ELOOP);
		victim_check_free(v);
	}

	assert_int_equal(symlink(target, mine), 0);
	assert_int_equal(swapio_file_open(env->h, mine, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &f), 0);
	assert_int_equal(swapio_pwrite(env->h, f, data, 3 * 4096 + 5, 0),
			 3 * 4096 + 5);
	assert_int_equal(swapio_file_close(f), 0);
	back = t_read_file(target, &n);
	assert_int_equal(n, 3 * 4096 + 5);
	assert_memory_equal(back, data, n);
	free(back);

	fd = open(target, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	assert_int_equal(swapio_file_open(env->h, proc, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &f), 0);
	assert_int_equal(swapio_pread(env->h, f, data, 4096, 4096), 4096);
	assert_int_equal(swapio_file_close(f), 0);
	close(fd);
	free(data);
	free(target);
	free(mine);
	free(theirs);
	free(sticky);
}

/* A FIFO opened for writing with create: refused at once. */
static void swap_file_fifo(void **state)
{
	struct env *env = *state;
	char *p = t_path(env->dir, "fifo");
	swapio_file *f = NULL;

	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(swapio_file_open(env->h, p, SWAPIO_O_READ |
					  SWAPIO_O_WRITE | SWAPIO_O_CREATE,
					  &f), -ESPIPE);
	detail_has("FIFO");
	free(p);
}

/* ------------------------------------------------------------------ */
/* swapio_config_save()                                                */
/* ------------------------------------------------------------------ */

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* A symlink, a FIFO, a directory and a device node are refused and left
 * as they were, no temporary left beside them. */
static void config_save_refuses_non_regular(void **state)
{
	struct env *env = *state;
	struct swapio_config cfg = { .queue_depth = 7 };
	struct victim *v = victim_new(env, "secret", 50);
	char *link = t_path(env->dir, "link.conf");
	char *fifo = t_path(env->dir, "fifo.conf");
	char *dir = t_path(env->dir, "dir.conf");
	char *dev = t_path(env->dir, "null.conf");
	struct stat st;
	size_t n;

	assert_int_equal(symlink(v->path, link), 0);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	n = entries(env->dir);

	assert_int_equal(swapio_config_save(link, &cfg), -ELOOP);
	detail_has(link);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	victim_check_free(v);

	assert_int_equal(swapio_config_save(fifo, &cfg), -ESPIPE);
	detail_has("FIFO");
	assert_int_equal(lstat(fifo, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));

	assert_int_equal(swapio_config_save(dir, &cfg), -EISDIR);
	assert_int_equal(lstat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(entries(dir), 0);
	assert_int_equal(entries(env->dir), n);

	if (need_root("device node as a configuration")) {
		assert_int_equal(mknod(dev, S_IFCHR | 0666, makedev(1, 3)), 0);
		assert_int_equal(swapio_config_save(dev, &cfg), -ESPIPE);
		detail_has("character device");
		assert_int_equal(lstat(dev, &st), 0);
		assert_true(S_ISCHR(st.st_mode));
		assert_int_equal(st.st_rdev, makedev(1, 3));
		assert_int_equal(entries(env->dir), n + 1);
	}
	free(dev);
	free(dir);
	free(fifo);
	free(link);
}

/* A regular file is replaced whole by a new inode; a missing one made. */
static void config_save_replaces_regular(void **state)
{
	struct env *env = *state;
	struct swapio_config cfg = { .queue_depth = 9, .threads = 3 };
	struct swapio_config back;
	char *p = t_path(env->dir, "swapio.conf");
	struct stat before, after;

	assert_int_equal(swapio_config_save(p, &cfg), 0);
	assert_int_equal(swapio_config_load(p, &back), 0);
	assert_memory_equal(&back, &cfg, sizeof(cfg));
	t_write_file(p, "queue_depth = 1\n", 16);
	assert_int_equal(stat(p, &before), 0);
	cfg.queue_depth = 11;
	assert_int_equal(swapio_config_save(p, &cfg), 0);
	assert_int_equal(stat(p, &after), 0);
	assert_int_not_equal(after.st_ino, before.st_ino);	/* renamed in */
	assert_int_equal(swapio_config_load(p, &back), 0);
	assert_memory_equal(&back, &cfg, sizeof(cfg));
	assert_int_equal(entries(env->dir), 2);	/* outside/ and the file */
	free(p);
}

/* Root drops to nobody for secure.nobody; not root, it skips. */
static void maybe_become_nobody(void)
{
	const char *v = getenv("SWAPIO_TEST_AS_NOBODY");

	if (!v || strcmp(v, "1"))
		return;
	if (geteuid())
		t_skip("SWAPIO_TEST_AS_NOBODY=1 needs root to become nobody; "
		       "the plain run already is unprivileged");
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		t_die("cannot become nobody: %s", strerror(errno));
	printf("running as uid %u\n", (unsigned int)geteuid());
}

/* An argument runs only the tests it matches (cmocka's filter). */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, each_setup, each_teardown)
		T(planted_index_tmp_on_create),
		T(planted_index_tmp_on_compaction),
		T(planted_dangling_links),
		T(planted_links_to_victim),
		T(planted_link_to_other_store),
		T(store_dir_link),
		T(planted_hard_link),
		T(fifos_refused_at_once),
		T(other_types_refused),
		T(dir_writable_by_others),
		T(dir_of_another_user),
		T(private_modes),
		T(same_dir_twice),
		T(striped_planted_link),
		T(swap_file_create_through_link),
		T(swap_file_create_trusted_link),
		T(swap_file_fifo),
		T(config_save_refuses_non_regular),
		T(config_save_replaces_regular),
#undef T
	};

	maybe_become_nobody();
	t_engine();
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
