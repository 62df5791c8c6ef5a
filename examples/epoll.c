/* SPDX-License-Identifier: MIT */
/*
 * swapio-epoll: many asynchronous ops driven from an epoll event loop.
 *
 *   swapio-epoll FILE [OPS] [SIZE]
 *
 * Writes OPS (default 256) regions of SIZE bytes (default 1M; K, M, G
 * suffixes) of random data to FILE, then reads them all back and compares,
 * keeping up to 32 ops in flight. The loop sleeps in epoll_wait() on the
 * handle's eventfd, which becomes readable when ops complete, beside
 * whatever else a program would watch (here: a once-a-second timerfd
 * that prints progress). On each wake-up it drains the eventfd, then asks
 * swapio_op_done() which ops finished. Exit 0 when every byte read back
 * matches.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <swapio.h>

#define MAX_INFLIGHT	32

struct loop {
	swapio_handle	*h;
	swapio_file	*f;
	unsigned char	*data;		/* what was written, OPS * SIZE */
	unsigned char	*back;		/* what is read back */
	size_t		size;
	unsigned int	ops, next, done;
	swapio_op	*slot[MAX_INFLIGHT];
	unsigned int	slot_op[MAX_INFLIGHT];	/* region of each slot */
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "swapio-epoll: %s: %s (%s)\n", what,
		swapio_strerror(err), swapio_errname(err));
	return 1;
}

/* Start region l->next in slot @s. 0 or -errno. */
static int start(struct loop *l, unsigned int s, int writing)
{
	const unsigned int i = l->next++;
	const uint64_t off = (uint64_t)i * l->size;

	l->slot_op[s] = i;
	if (writing)
		return swapio_submit_write(l->h, l->f, l->data + off, l->size,
					   off, &l->slot[s]);
	return swapio_submit_read(l->h, l->f, l->back + off, l->size, off,
				  &l->slot[s]);
}

/* Collect finished ops and refill their slots. 0 or the first error. */
static int reap(struct loop *l, int writing)
{
	int64_t n;
	int ret;

	for (unsigned int s = 0; s < MAX_INFLIGHT; s++) {
		if (!l->slot[s] || !swapio_op_done(l->slot[s]))
			continue;
		n = swapio_op_wait(l->slot[s], 0);	/* done: no wait */
		swapio_op_free(l->slot[s]);
		l->slot[s] = NULL;
		if (n != (int64_t)l->size)
			return n < 0 ? (int)n : -EIO;
		l->done++;
		if (l->next < l->ops && (ret = start(l, s, writing)))
			return ret;
	}
	return 0;
}

/* One pass over all regions: write or read. 0 or -errno. */
static int pass(struct loop *l, int writing, int ep, int tfd)
{
	struct epoll_event ev[4];
	uint64_t count;
	int n, ret = 0;

	l->next = l->done = 0;
	for (unsigned int s = 0; s < MAX_INFLIGHT && l->next < l->ops; s++)
		if ((ret = start(l, s, writing)))
			return ret;
	while (!ret && l->done < l->ops) {
		n = epoll_wait(ep, ev, 4, -1);
		for (int i = 0; i < n; i++) {
			/* Either descriptor counts events in 8 bytes. */
			if (read(ev[i].data.fd, &count, sizeof(count)) < 0)
				continue;
			if (ev[i].data.fd == tfd)
				printf("  %s: %u of %u ops done\n", writing ?
				       "write" : "read", l->done, l->ops);
		}
		ret = reap(l, writing);
	}
	for (unsigned int s = 0; s < MAX_INFLIGHT; s++)
		swapio_op_free(l->slot[s]);	/* after an error only */
	memset(l->slot, 0, sizeof(l->slot));
	return ret;
}

static int watch(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv)
{
	struct itimerspec tick = { { 1, 0 }, { 1, 0 } };
	struct loop l = { .ops = 256, .size = 1u << 20 };
	size_t total;
	int ep, efd, tfd, ret;
	char *end;

	if (argc > 2)
		l.ops = (unsigned int)strtoul(argv[2], NULL, 10);
	if (argc > 3) {
		l.size = strtoull(argv[3], &end, 10);
		l.size <<= *end == 'K' ? 10 : *end == 'M' ? 20 :
			   *end == 'G' ? 30 : 0;
	}
	if (argc < 2 || argc > 4 || !l.ops || !l.size) {
		fprintf(stderr, "usage: swapio-epoll FILE [OPS] [SIZE]\n");
		return 2;
	}
	total = (size_t)l.ops * l.size;
	l.data = malloc(total);
	l.back = calloc(1, total);
	if (!l.data || !l.back)
		return fail("memory", -ENOMEM);
	srandom(42);
	for (size_t i = 0; i < total; i++)
		l.data[i] = (unsigned char)random();

	if ((ret = swapio_handle_create(NULL, &l.h)))
		return fail("handle", ret);
	if ((ret = swapio_file_open(l.h, argv[1], SWAPIO_O_READ |
				    SWAPIO_O_WRITE | SWAPIO_O_CREATE |
				    SWAPIO_O_TRUNC, &l.f)))
		return fail(argv[1], ret);
	if ((efd = swapio_handle_eventfd(l.h)) < 0)
		return fail("eventfd", efd);
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (ep < 0 || tfd < 0 || timerfd_settime(tfd, 0, &tick, NULL) ||
	    watch(ep, efd) || watch(ep, tfd))
		return fail("epoll", -errno);

	if ((ret = pass(&l, 1, ep, tfd)))
		return fail("write", ret);
	if ((ret = pass(&l, 0, ep, tfd)))
		return fail("read", ret);
	if (memcmp(l.data, l.back, total)) {
		fprintf(stderr, "swapio-epoll: data read back differs\n");
		return 1;
	}
	printf("%u ops of %zu bytes written and read back through epoll: "
	       "identical (engine %s)\n", l.ops, l.size,
	       swapio_handle_engine(l.h));

	close(tfd);
	close(ep);		/* the eventfd is the handle's */
	swapio_file_close(l.f);
	swapio_handle_destroy(l.h);
	free(l.data);
	free(l.back);
	return 0;
}
