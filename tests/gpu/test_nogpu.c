/* SPDX-License-Identifier: MIT */
/*
 * A library built without the device layer (-DSWAPIO_GPU=OFF): every
 * device call is still there, checks its arguments and answers
 * SWAPIO_ENOCUDA; the note says why; host transfers on the same handle
 * are untouched. Built and run only in such a build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "testing.h"

#define LEN	(1u << 20)

static void device_calls_answer_enocuda(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	struct swapio_dev_saved sv;
	unsigned char dev[4096];
	swapio_op *op = (swapio_op *)dev;
	swapio_file *f;
	void *stream = dev;

	assert_int_equal(swapio_file_open(h, env->path, SWAPIO_O_WRITE |
					  SWAPIO_O_CREATE, &f), 0);
	assert_int_equal(swapio_dev_submit_write(h, f, 0, dev, sizeof(dev), 0,
						 NULL, &op), SWAPIO_ENOCUDA);
	assert_null(op);
	assert_int_equal(swapio_dev_submit_read(h, f, 0, dev, sizeof(dev), 0,
						NULL, &op), SWAPIO_ENOCUDA);
	assert_int_equal(swapio_dev_submit_write_path(h, env->path, 0, dev,
						      sizeof(dev), 0, NULL,
						      &op), SWAPIO_ENOCUDA);
	assert_int_equal(swapio_dev_submit_read_path(h, env->path, 0, dev,
						     sizeof(dev), 0, NULL,
						     &op), SWAPIO_ENOCUDA);
	assert_int_equal(swapio_dev_pwrite(h, f, 0, dev, sizeof(dev), 0, NULL),
			 SWAPIO_ENOCUDA);
	assert_int_equal(swapio_dev_pread(h, f, 0, dev, sizeof(dev), 0, NULL),
			 SWAPIO_ENOCUDA);
	assert_int_equal(swapio_dev_stream(h, 0, &stream), SWAPIO_ENOCUDA);
	assert_null(stream);
	memset(&sv, 0xff, sizeof(sv));
	assert_int_equal(swapio_dev_enter(h, 0, &sv), SWAPIO_ENOCUDA);
	assert_int_equal(sv.how, 0);
	swapio_dev_leave(h, &sv);
	assert_int_equal(swapio_dev_path(h, 0, 1), -ENODEV);
	swapio_file_close(f);
	swapio_handle_destroy(h);
}

static void arguments_checked_first(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	unsigned char dev[64];
	swapio_op *op;

	assert_int_equal(swapio_dev_submit_read(NULL, NULL, 0, dev, 1, 0,
						NULL, &op), -EINVAL);
	assert_int_equal(swapio_dev_submit_read_path(h, env->path, -1, dev, 1,
						     0, NULL, &op), -EINVAL);
	assert_int_equal(swapio_dev_submit_write_path(h, env->path,
						      SWAPIO_DEV_MAX, dev, 1,
						      0, NULL, &op), -EINVAL);
	assert_int_equal(swapio_dev_stream(h, 0, NULL), -EINVAL);
	assert_int_equal(swapio_dev_enter(h, 0, NULL), -EINVAL);
	assert_int_equal(swapio_dev_path(NULL, 0, 0), -EINVAL);
	swapio_handle_destroy(h);
}

/* The note says why, and host data still goes to the file and back. */
static void note_and_host_path(void **state)
{
	struct t_env *env = *state;
	swapio_handle *h = t_handle((struct swapio_config){ 0 });
	unsigned char *data = t_random_buf(LEN, 21), *back;
	char note[128];
	size_t n;
	swapio_file *f;

	n = swapio_handle_gpu_note(h, note, sizeof(note));
	assert_int_equal(n, strlen(note));
	assert_non_null(strstr(note, "SWAPIO_GPU=OFF"));
	assert_int_equal(swapio_buf_alloc(LEN, 0, (void **)&back), 0);
	assert_int_equal(swapio_file_open(h, env->path, SWAPIO_O_WRITE |
					  SWAPIO_O_READ | SWAPIO_O_CREATE,
					  &f), 0);
	assert_int_equal(swapio_pwrite(h, f, data, LEN, 0), LEN);
	assert_int_equal(swapio_pread(h, f, back, LEN, 0), LEN);
	assert_int_equal(t_first_diff(data, back, LEN), SIZE_MAX);
	swapio_file_close(f);
	swapio_buf_free(back, LEN);
	free(data);
	swapio_handle_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(device_calls_answer_enocuda),
		cmocka_unit_test(arguments_checked_first),
		cmocka_unit_test(note_and_host_path),
	};

	return cmocka_run_group_tests(tests, t_env_setup, t_env_teardown);
}
