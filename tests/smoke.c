#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "swapio.h"
int main(int argc, char **argv)
{
	struct swapio_config c = {0};
	swapio_handle *h; swapio_file *f;
	size_t n = (64u<<20) + 3; unsigned char *a = malloc(n), *b = malloc(n);
	c.engine = argc > 1 ? swapio_engine_parse(argv[1]) : 0;
	c.threads = argc > 2 ? atoi(argv[2]) : 1;
	for (size_t i = 0; i < n; i++) a[i] = rand();
	int r = swapio_handle_create(&c, &h);
	if (r) { printf("create %s\n", swapio_strerror(r)); return 1; }
	printf("engine %s: %s\n", swapio_handle_engine(h), swapio_handle_engine_note(h));
	r = swapio_file_open(h, "/tmp/smoke.bin", SWAPIO_O_READ|SWAPIO_O_WRITE|SWAPIO_O_CREATE|SWAPIO_O_TRUNC, &f);
	if (r) { printf("open %s\n", swapio_strerror(r)); return 1; }
	uint32_t ma, oa; swapio_file_alignment(f, &ma, &oa);
	printf("direct %d align %u %u\n", swapio_file_direct(f), ma, oa);
	ssize_t w = swapio_pwrite(h, f, a + 1, n - 1, 4103);
	ssize_t rr = swapio_pread(h, f, b, n - 1, 4103);
	printf("w %zd r %zd size %ld eq %d\n", w, rr, (long)swapio_file_size(f), memcmp(a + 1, b, n - 1) == 0);
	rr = swapio_pread(h, f, b, n, 4103 + 100);
	printf("short read %zd\n", rr);
	struct swapio_stats s; swapio_handle_stats(h, &s);
	printf("reqs %lu sys %lu bounced %lu p50 %lu p99 %lu\n", s.requests, s.syscalls, s.bounced_bytes, s.lat_p50_ns, s.lat_p99_ns);
	swapio_file_close(f); swapio_handle_destroy(h); free(a); free(b);
	return 0;
}
