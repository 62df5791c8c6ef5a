/* SPDX-License-Identifier: MIT */
/*
 * Fork: every swapio object belongs to the process that created it.
 *
 * A child of fork() inherits copies of the parent's handles, files, stores
 * and pools, but none of their threads, and the locks in them may have
 * been held by a thread that does not exist there. So the child must not
 * use them: each object records the fork generation it was made in, the
 * child handler below moves the generation on, and every entry point on
 * an object of an older generation returns SWAPIO_EFORKED instead of
 * waiting for workers that will never run.
 *
 * The child handler also closes the descriptors of every open swapio_file
 * (close() is async-signal-safe). A child that keeps running, as a
 * DataLoader worker does, then holds no descriptor of the parent's data
 * files, so it cannot keep a store's lease from being granted or keep a
 * file's blocks alive after the parent removed it.
 */
#include <pthread.h>
#include <unistd.h>

#include "internal.h"

atomic_uint swapio__fork_generation;

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static swapio_file *files;	/* every open swapio_file, under files_lock */

void swapio__file_register(swapio_file *f)
{
	pthread_mutex_lock(&files_lock);
	f->prev = NULL;
	f->next = files;
	if (files)
		files->prev = f;
	files = f;
	pthread_mutex_unlock(&files_lock);
}

void swapio__file_unregister(swapio_file *f)
{
	pthread_mutex_lock(&files_lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&files_lock);
}

/* Hold the list across fork(), so that the child sees it whole. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&files_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&files_lock);
}

static void fork_child(void)
{
	for (swapio_file *f = files; f; f = f->next) {
		if (f->bfd != f->fd && f->bfd >= 0)
			close(f->bfd);
		if (f->fd >= 0)
			close(f->fd);
		f->fd = f->bfd = -1;
	}
	files = NULL;	/* the parent's to free, not ours */
	atomic_fetch_add(&swapio__fork_generation, 1);
	pthread_mutex_unlock(&files_lock);
}

/* At load time, so that no object can exist before the handler does. */
__attribute__((constructor)) static void fork_setup(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
