/* SPDX-License-Identifier: MIT */
/*
 * The device calls of a library built without the device layer
 * (-DSWAPIO_GPU=OFF): they stay in the ABI, check their arguments as the
 * device layer does, and answer SWAPIO_ENOCUDA, as on a machine without a
 * CUDA runtime.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "swapio.h"
#include "util.h"

static const char none_note[] = "built without the device layer "
				"(SWAPIO_GPU=OFF)";

static int none_check(const swapio_handle *h, int device, swapio_op **op)
{
	if (op)
		*op = NULL;
	if (!h || device < 0 || device >= SWAPIO_DEV_MAX)
		return -EINVAL;
	return SWAPIO_ENOCUDA;
}

int swapio_dev_submit_read(swapio_handle *h, swapio_file *f, int device,
			   void *dev_buf, size_t len, uint64_t off,
			   void *stream, swapio_op **op)
{
	(void)dev_buf, (void)len, (void)off, (void)stream;
	swapio__detail_clear();
	if (!f || !op)
		return -EINVAL;
	return none_check(h, device, op);
}

int swapio_dev_submit_write(swapio_handle *h, swapio_file *f, int device,
			    const void *dev_buf, size_t len, uint64_t off,
			    void *stream, swapio_op **op)
{
	(void)dev_buf, (void)len, (void)off, (void)stream;
	swapio__detail_clear();
	if (!f || !op)
		return -EINVAL;
	return none_check(h, device, op);
}

int swapio_dev_submit_read_path(swapio_handle *h, const char *path,
				int device, void *dev_buf, size_t len,
				uint64_t off, void *stream, swapio_op **op)
{
	(void)dev_buf, (void)len, (void)off, (void)stream;
	swapio__detail_clear();
	if (!path || !op)
		return -EINVAL;
	return none_check(h, device, op);
}

int swapio_dev_submit_write_path(swapio_handle *h, const char *path,
				 int device, const void *dev_buf, size_t len,
				 uint64_t off, void *stream, swapio_op **op)
{
	(void)dev_buf, (void)len, (void)off, (void)stream;
	swapio__detail_clear();
	if (!path || !op)
		return -EINVAL;
	return none_check(h, device, op);
}

ssize_t swapio_dev_pread(swapio_handle *h, swapio_file *f, int device,
			 void *dev_buf, size_t len, uint64_t off, void *stream)
{
	swapio_op *op;

	return swapio_dev_submit_read(h, f, device, dev_buf, len, off, stream,
				      &op);
}

ssize_t swapio_dev_pwrite(swapio_handle *h, swapio_file *f, int device,
			  const void *dev_buf, size_t len, uint64_t off,
			  void *stream)
{
	swapio_op *op;

	return swapio_dev_submit_write(h, f, device, dev_buf, len, off,
				       stream, &op);
}

int swapio_dev_stream(swapio_handle *h, int device, void **stream)
{
	swapio__detail_clear();
	if (!stream)
		return -EINVAL;
	*stream = NULL;
	return none_check(h, device, NULL);
}

int swapio_dev_enter(swapio_handle *h, int device,
		     struct swapio_dev_saved *saved)
{
	swapio__detail_clear();
	if (!saved)
		return -EINVAL;
	memset(saved, 0, sizeof(*saved));
	return none_check(h, device, NULL);
}

void swapio_dev_leave(swapio_handle *h, const struct swapio_dev_saved *saved)
{
	(void)h, (void)saved;	/* enter never succeeds: nothing to give back */
}

int swapio_dev_path(swapio_handle *h, int device, int write)
{
	(void)write;
	if (!h || device < 0 || device >= SWAPIO_DEV_MAX)
		return -EINVAL;
	return -ENODEV;		/* no device is ever used */
}

size_t swapio_handle_gpu_note(swapio_handle *h, char *buf, size_t len)
{
	if (!h)
		return 0;
	if (buf && len)
		snprintf(buf, len, "%s", none_note);
	return sizeof(none_note) - 1;
}
