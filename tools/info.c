/* SPDX-License-Identifier: MIT */
/*
 * swapio info: what this machine offers swapio, and why not where it
 * does not: engines, the filesystem and direct-I/O alignment of a path,
 * and the memory limits that decide pinning and huge pages.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "swapio.h"
#include "bench.h"
#include "cmd.h"

#define PROBE_BYTES	(1u << 20)

static const char usage[] =
"usage: swapio info [--json] [--store DIR] [PATH]\n"
"\n"
"Print the library version, which I/O engines can run here (and why not),\n"
"the memory-lock limit and huge-page settings. With PATH (a directory or\n"
"a file): its filesystem, whether O_DIRECT works there and the alignment\n"
"it needs. For a directory a temporary file is written, read back and\n"
"removed.\n"
"\n"
"  -j, --json       the same facts as one JSON object\n"
"  -s, --store DIR  open the store in DIR as a program would (never\n"
"                   creating one) and print its keys, sizes and the\n"
"                   index records the open dropped, if any\n"
"  -h, --help       this help\n";

/* ------------------------------------------------------------------ */
/* Small readers of /proc and /sys                                     */
/* ------------------------------------------------------------------ */

/* The first line of @path without its newline; false if unreadable. */
static bool read_line(const char *path, char *buf, size_t n)
{
	FILE *fp = fopen(path, "re");
	bool ok;

	if (!fp)
		return false;
	ok = fgets(buf, (int)n, fp) != NULL;
	fclose(fp);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static long long read_ll(const char *path)
{
	char buf[64];

	return read_line(path, buf, sizeof(buf)) ? atoll(buf) : -1;
}

/* "always [madvise] never" -> "madvise". */
static const char *bracketed(char *s)
{
	char *open = strchr(s, '['), *close;

	if (!open || !(close = strchr(open, ']')))
		return s;
	*close = '\0';
	return open + 1;
}

/* ------------------------------------------------------------------ */
/* Engines                                                             */
/* ------------------------------------------------------------------ */

/* kernel.io_uring_disabled: 0 all, 1 privileged or io_uring_group, 2 none. */
static void uring_hint(int err)
{
	long long dis = read_ll("/proc/sys/kernel/io_uring_disabled");

	if (dis == 1)
		printf("             kernel.io_uring_disabled = 1: only "
		       "CAP_SYS_ADMIN or kernel.io_uring_group may use it\n");
	else if (dis == 2)
		printf("             kernel.io_uring_disabled = 2: disabled "
		       "for everyone\n");
	else if (err == -EPERM || err == -ENOSYS)
		printf("             a seccomp filter (container runtime?) "
		       "may block io_uring_setup\n");
}

static void aio_hint(void)
{
	long long nr = read_ll("/proc/sys/fs/aio-nr");
	long long max = read_ll("/proc/sys/fs/aio-max-nr");

	if (nr >= 0 && max > 0)
		printf("             fs.aio-nr = %lld of fs.aio-max-nr = %lld "
		       "event slots in use system-wide%s\n", nr, max,
		       nr >= max ? ": raise fs.aio-max-nr" : "");
}

static void print_engine(unsigned int e)
{
	int ret = swapio_engine_probe(e);

	printf("  %-9s  %s%s\n", swapio_engine_name(e),
	       ret ? "unavailable: " : "available",
	       ret ? (ret == -EOPNOTSUPP ? "not built in" :
		      swapio_strerror(ret)) : "");
	if (e == SWAPIO_ENGINE_URING)
		uring_hint(ret);
	else if (e == SWAPIO_ENGINE_AIO)
		aio_hint();
}

static void print_engines(swapio_handle *h)
{
	printf("engines:\n");
	for (unsigned int e = SWAPIO_ENGINE_URING; e <= SWAPIO_ENGINE_THREADS;
	     e++)
		print_engine(e);
	if (h)
		printf("  %-9s  %s (%s)\n", "auto", swapio_handle_engine(h),
		       swapio_handle_engine_note(h));
}

/* ------------------------------------------------------------------ */
/* A path: filesystem, O_DIRECT, alignment                             */
/* ------------------------------------------------------------------ */

static const char *fs_name(long type)
{
	static const struct {
		unsigned long magic;
		const char *name;
	} names[] = {
		{ EXT4_SUPER_MAGIC, "ext2/ext3/ext4" },
		{ XFS_SUPER_MAGIC, "xfs" },
		{ BTRFS_SUPER_MAGIC, "btrfs" },
		{ TMPFS_MAGIC, "tmpfs" },
		{ RAMFS_MAGIC, "ramfs" },
		{ F2FS_SUPER_MAGIC, "f2fs" },
		{ OVERLAYFS_SUPER_MAGIC, "overlayfs" },
		{ FUSE_SUPER_MAGIC, "fuse" },
		{ NFS_SUPER_MAGIC, "nfs" },
		{ CIFS_SUPER_MAGIC, "cifs" },
		{ SMB2_SUPER_MAGIC, "smb2" },
		{ SQUASHFS_MAGIC, "squashfs" },
		{ 0x2fc12fc1, "zfs" },
		{ 0x00c36400, "ceph" },
		{ 0x47504653, "gpfs" },
		{ 0x0bd00bd0, "lustre" },
		{ 0x01021997, "v9fs" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].magic == (unsigned long)type)
			return names[i].name;
	return NULL;
}

/* Move PROBE_BYTES through @f, aligned: the bytes read back, or -errno. */
static int64_t transfer(swapio_handle *h, swapio_file *f, bool write)
{
	void *out = NULL, *in = NULL;
	int64_t n = -ENOMEM;

	if (swapio_buf_alloc(PROBE_BYTES, 0, &out) ||
	    swapio_buf_alloc(PROBE_BYTES, 0, &in))
		goto out;
	memset(out, 0xa5, PROBE_BYTES);
	n = write ? swapio_pwrite(h, f, out, PROBE_BYTES, 0) : 0;
	if (n >= 0)
		n = swapio_pread(h, f, in, PROBE_BYTES, 0);
	if (n >= 0 && write && memcmp(in, out, PROBE_BYTES))
		n = -EIO;
out:
	swapio_buf_free(out, PROBE_BYTES);
	swapio_buf_free(in, PROBE_BYTES);
	return n;
}

/* Say whether PROBE_BYTES came back. */
static void probe_transfer(swapio_handle *h, swapio_file *f, bool write)
{
	int64_t n = transfer(h, f, write);

	if (n < 0)
		printf("  transfer     failed: %s\n", swapio_strerror((int)n));
	else
		printf("  transfer     ok (%lld bytes %s)\n", (long long)n,
		       write ? "written and read back" : "read");
}

/*
 * A fresh file in @dir (mkstemp(3): exclusive, 0600), removed at once: it
 * lives while it is open. It is opened through its descriptor, never by
 * its name, which others may change in a directory they can write; by
 * name only where /proc is not mounted.
 */
static int open_in_dir(swapio_handle *h, const char *dir, swapio_file **f)
{
	const unsigned int flags = SWAPIO_O_READ | SWAPIO_O_WRITE;
	char *name, self[64];
	int fd, ret;

	if (asprintf(&name, "%s/.swapio-info-XXXXXX", dir) < 0)
		return -ENOMEM;
	fd = mkstemp(name);
	if (fd < 0) {
		ret = -errno;
		free(name);
		return ret;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	ret = swapio_file_open(h, self, flags, f);
	if (ret == -ENOENT)
		ret = swapio_file_open(h, name, flags, f);
	unlink(name);
	close(fd);
	free(name);
	return ret;
}

static void print_fs(const char *path, const struct statfs *sf)
{
	const char *name = fs_name(sf->f_type);

	printf("path %s:\n", path);
	if (name)
		printf("  filesystem   %s\n", name);
	else
		printf("  filesystem   unknown (f_type 0x%lx)\n",
		       (unsigned long)sf->f_type);
	printf("  free         %.1f GiB\n",
	       (double)sf->f_bavail * (double)sf->f_bsize / (1 << 30));
}

static int print_path(swapio_handle *h, const char *path)
{
	struct statfs sf;
	struct stat st;
	swapio_file *f;
	uint32_t mem, off;
	bool dir;
	int ret;

	if (stat(path, &st) || statfs(path, &sf))
		return tool_fail(path, -errno);
	dir = S_ISDIR(st.st_mode);
	print_fs(path, &sf);
	ret = dir ? open_in_dir(h, path, &f) :
	      swapio_file_open(h, path, SWAPIO_O_READ, &f);
	if (ret)
		return tool_fail(path, ret);
	swapio_file_alignment(f, &mem, &off);
	printf("  O_DIRECT     %s\n", swapio_file_direct(f) ? "yes" :
	       "no: the filesystem refused it; swapio uses the page cache");
	if (swapio_file_direct(f))
		printf("  alignment    memory %u, offset and length %u bytes\n",
		       mem, off);
	if (dir || st.st_size >= PROBE_BYTES)
		probe_transfer(h, f, dir);
	swapio_file_close(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

static void print_limit(const char *label, rlim_t v)
{
	if (v == RLIM_INFINITY)
		printf("%s unlimited", label);
	else
		printf("%s %llu KiB", label, (unsigned long long)v >> 10);
}

static void print_memory(void)
{
	struct rlimit rl;
	char thp[128];
	long long nr;

	printf("memory:\n");
	if (!getrlimit(RLIMIT_MEMLOCK, &rl)) {
		print_limit("  memlock     ", rl.rlim_cur);
		print_limit(" (hard", rl.rlim_max);
		/* CAP_IPC_LOCK, which root usually holds, lifts the limit. */
		printf("): %s\n", geteuid() ?
		       "buffers beyond it are not pinned" :
		       "root, not enforced with CAP_IPC_LOCK");
	}
	if (read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp,
		      sizeof(thp)))
		printf("  THP          %s (%s)\n", bracketed(thp),
		       "SWAPIO_BUF_HUGE asks for it with madvise");
	else
		printf("  THP          not available\n");
	nr = read_ll("/proc/sys/vm/nr_hugepages");
	if (nr >= 0)
		printf("  hugetlb      nr_hugepages = %lld\n", nr);
}

/* ------------------------------------------------------------------ */
/* JSON: the same facts, one object                                    */
/* ------------------------------------------------------------------ */

/* "error": null, or the errno's name and message. */
static void json_error(int err)
{
	if (!err) {
		fputs("\"error\": null", stdout);
		return;
	}
	printf("\"error\": ");
	bench_json_string(stdout, swapio_errname(err));
	printf(", \"message\": ");
	bench_json_string(stdout, swapio_strerror(err));
}

static void json_engines(swapio_handle *h)
{
	int ret;

	fputs("\"engines\": [", stdout);
	for (unsigned int e = SWAPIO_ENGINE_URING; e <= SWAPIO_ENGINE_THREADS;
	     e++) {
		ret = swapio_engine_probe(e);
		printf("%s{\"name\": \"%s\", \"available\": %s, ",
		       e == SWAPIO_ENGINE_URING ? "" : ", ",
		       swapio_engine_name(e), ret ? "false" : "true");
		json_error(ret);
		fputs("}", stdout);
	}
	fputs("], \"auto\": ", stdout);
	if (h) {
		printf("{\"engine\": \"%s\", \"note\": ",
		       swapio_handle_engine(h));
		bench_json_string(stdout, swapio_handle_engine_note(h));
		fputs("}", stdout);
	} else {
		fputs("null", stdout);
	}
}

static void json_limit(const char *key, rlim_t v)
{
	if (v == RLIM_INFINITY)
		printf("\"%s\": null", key);
	else
		printf("\"%s\": %llu", key, (unsigned long long)v);
}

static void json_memory(void)
{
	struct rlimit rl;
	char thp[128];

	fputs("\"memory\": {", stdout);
	if (!getrlimit(RLIMIT_MEMLOCK, &rl)) {
		json_limit("memlock_bytes", rl.rlim_cur);
		fputs(", ", stdout);
		json_limit("memlock_hard_bytes", rl.rlim_max);
		fputs(", ", stdout);
	}
	printf("\"root\": %s, \"thp\": ", geteuid() ? "false" : "true");
	if (read_line("/sys/kernel/mm/transparent_hugepage/enabled", thp,
		      sizeof(thp)))
		bench_json_string(stdout, bracketed(thp));
	else
		fputs("null", stdout);
	printf(", \"nr_hugepages\": %lld}",
	       read_ll("/proc/sys/vm/nr_hugepages"));
}

/* The path's facts; 0, or the error (also in the object). */
static int json_path(swapio_handle *h, const char *path)
{
	const char *name;
	struct statfs sf;
	struct stat st;
	swapio_file *f;
	uint32_t mem, off;
	int64_t n;
	bool dir;
	int ret;

	fputs("\"path\": {\"path\": ", stdout);
	bench_json_string(stdout, path);
	fputs(", ", stdout);
	if (stat(path, &st) || statfs(path, &sf)) {
		ret = -errno;
		json_error(ret);
		fputs("}", stdout);
		return ret;
	}
	dir = S_ISDIR(st.st_mode);
	name = fs_name(sf.f_type);
	printf("\"filesystem\": ");
	if (name)
		bench_json_string(stdout, name);
	else
		fputs("null", stdout);
	printf(", \"f_type\": %lu, \"free_bytes\": %llu, ",
	       (unsigned long)sf.f_type,
	       (unsigned long long)sf.f_bavail * (unsigned long long)sf.f_bsize);
	ret = dir ? open_in_dir(h, path, &f) :
	      swapio_file_open(h, path, SWAPIO_O_READ, &f);
	if (ret) {
		json_error(ret);
		fputs("}", stdout);
		return ret;
	}
	swapio_file_alignment(f, &mem, &off);
	printf("\"direct\": %s, \"mem_align\": %u, \"offset_align\": %u, "
	       "\"transfer\": ", swapio_file_direct(f) ? "true" : "false",
	       mem, off);
	if (dir || st.st_size >= PROBE_BYTES) {
		n = transfer(h, f, dir);
		printf("{\"bytes\": %lld, \"written\": %s, ",
		       n < 0 ? 0LL : (long long)n, dir ? "true" : "false");
		json_error(n < 0 ? (int)n : 0);
		fputs("}", stdout);
	} else {
		fputs("null", stdout);
	}
	fputs(", \"error\": null}", stdout);
	swapio_file_close(f);
	return 0;
}

/*
 * The store in @dir, opened as a program would open it (a torn tail is
 * zeroed and counted, as at any open), never created. Text, or with
 * @json one "store" member. 0 or the open's error.
 */
static int show_store(swapio_handle *h, const char *dir, bool json)
{
	const struct swapio_store_config cfg = {
		.flags = SWAPIO_STORE_NO_CREATE,
	};
	struct swapio_store_info in;
	char vb[32], ub[32], fb[32];
	swapio_store *s;
	int ret = swapio_store_open(h, dir, &cfg, &s);

	if (ret) {
		if (json) {
			fputs("\"store\": {", stdout);
			json_error(ret);
			fputs("}", stdout);
		}
		if (*swapio_error_detail())
			fprintf(stderr, "swapio: %s: %s\n",
				swapio_strerror(ret), swapio_error_detail());
		else
			tool_fail(dir, ret);
		return ret;
	}
	swapio_store_info(s, &in);
	if (json) {
		printf("\"store\": {\"keys\": %llu, \"value_bytes\": %llu, "
		       "\"used_bytes\": %llu, \"file_bytes\": %llu, "
		       "\"index_bytes\": %llu, \"drives\": %u, "
		       "\"dropped_records\": %llu, \"error\": null}",
		       (unsigned long long)in.keys,
		       (unsigned long long)in.value_bytes,
		       (unsigned long long)in.used_bytes,
		       (unsigned long long)in.file_bytes,
		       (unsigned long long)in.index_bytes, in.drives,
		       (unsigned long long)in.dropped_records);
	} else {
		tool_format_size(vb, sizeof(vb), in.value_bytes);
		tool_format_size(ub, sizeof(ub), in.used_bytes);
		tool_format_size(fb, sizeof(fb), in.file_bytes);
		printf("store        %s\n"
		       "  keys       %llu (%s of values, %s of %s used)\n"
		       "  index      %llu bytes, %llu record(s) dropped\n",
		       dir, (unsigned long long)in.keys, vb, ub, fb,
		       (unsigned long long)in.index_bytes,
		       (unsigned long long)in.dropped_records);
	}
	tool_store_note(s, dir);
	swapio_store_close(s);
	return 0;
}

static int print_json(swapio_handle *h, int create_err, const char *path,
		      const char *store)
{
	unsigned int v = swapio_version();
	int rc = create_err ? 1 : 0;

	printf("{\"version\": \"%u.%u.%u\", ", v / 10000, v / 100 % 100,
	       v % 100);
	json_engines(h);
	fputs(", ", stdout);
	if (h && path) {
		rc = json_path(h, path) ? 1 : rc;
		fputs(", ", stdout);
	}
	if (h && store) {
		rc = show_store(h, store, true) ? 1 : rc;
		fputs(", ", stdout);
	}
	json_memory();
	fputs("}\n", stdout);
	return rc;
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "store", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct swapio_config cfg = { 0 };
	swapio_handle *h = NULL;
	unsigned int v = swapio_version();
	const char *store = NULL;
	bool json = false;
	int c, rc = 0, ret;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "js:h", opts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
			continue;
		}
		if (c == 's') {
			store = optarg;
			continue;
		}
		if (c != 'h')
			return tool_usage_error("info", usage, "bad option: %s",
						argv[optind - 1]);
		fputs(usage, stdout);
		return 0;
	}
	if (argc - optind > 1)
		return tool_usage_error("info", usage, "one PATH at most");
	if (json) {
		ret = swapio_handle_create(&cfg, &h);
		rc = print_json(h, ret, optind < argc ? argv[optind] : NULL,
				store);
		swapio_handle_destroy(h);
		return rc;
	}

	printf("swapio %u.%u.%u\n", v / 10000, v / 100 % 100, v % 100);
	ret = swapio_handle_create(&cfg, &h);
	print_engines(h);
	if (ret)
		rc = tool_fail("auto engine", ret);
	if (h && optind < argc)
		rc = print_path(h, argv[optind]) ? 1 : rc;
	if (h && store)
		rc = show_store(h, store, false) ? 1 : rc;
	print_memory();
	swapio_handle_destroy(h);
	return rc;
}
